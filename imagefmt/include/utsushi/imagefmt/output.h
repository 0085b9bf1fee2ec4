#pragma once
// The one way images are written: the formats utsushi can write, the options
// each takes, and write_image(), which writes a source device's guest
// contents either to a new file or in place onto a block device. Used by
// utsushi-img convert, p2v capture and (later) v2p restore and clone --full.
//
// Targets:
//  - a path that does not exist or names a regular file: a new file, written
//    through AtomicFile (temporary name, renamed only when complete; on any
//    failure, cancellation included, nothing appears under `target`);
//  - a block device: written in place (raw only), as qemu-img does, after the
//    checks of raw.h (not mounted, no holders, not swap; opened O_EXCL); the
//    device must hold the source; bytes past the source's size are left alone;
//  - anything else (character device, FIFO, socket, directory) is refused
//    before any work, naming what it is.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/block_device.h"

namespace utsushi::imagefmt {

// Format options (qemu-img's -o names).
inline constexpr std::string_view k_opt_compression_type = "compression_type";  // qcow2: zstd | zlib
inline constexpr std::string_view k_opt_cluster_size = "cluster_size";          // qcow2: 512 .. 2M, a power of two
inline constexpr std::string_view k_opt_cpus = "cpus";                          // ova: virtual CPUs in the OVF
inline constexpr std::string_view k_opt_memory = "memory";                      // ova: memory in the OVF

struct WritableFormat {
  std::string_view name;         // "raw", "qcow2", "vmdk", "ova"
  std::string_view description;
  std::string_view extension;    // ".raw", ".qcow2", ".vmdk", ".ova"
  bool compress;                 // -c applies
  std::span<const std::string_view> options;  // the format options it takes
  bool block_device;             // may be written in place onto a block device
};

// Every format utsushi writes, in a fixed order.
std::span<const WritableFormat> writable_formats() noexcept;
// The entry for `name`; not_supported naming the writable formats otherwise.
[[nodiscard]] Result<const WritableFormat*> find_writable_format(std::string_view name);

struct OutputOptions {
  std::string format = "raw";
  bool compress = false;                        // qcow2: compressed clusters (zstd unless compression_type)
  std::optional<std::string> compression_type;  // qcow2: "zstd" | "zlib"
  std::optional<std::uint64_t> cluster_size;    // qcow2 (default 64 KiB)
  std::optional<unsigned> cpus;                 // ova (default 2)
  std::optional<std::uint64_t> memory_mib;      // ova (default 2048)
  unsigned threads = 0;                         // 0: one per core
};

struct OutputStats {
  std::uint64_t bytes_read = 0;     // read from the source
  std::uint64_t bytes_written = 0;  // guest bytes written
  std::uint64_t bytes_zero = 0;     // zero bytes skipped (or zeroed on a device)
  std::uint64_t output_size = 0;    // allocated bytes of a file; the size of a device
  bool block_device = false;        // written in place onto a block device
};

// Checks the options against the format: an unknown format is not_supported;
// an option the format does not take, or a bad value, is invalid_argument.
[[nodiscard]] Result<const WritableFormat*> check_output_options(const OutputOptions& options);

enum class TargetKind { new_file, block_device };

// What writing `target` in `format` would do (see the list above), without
// writing: refuses non-regular, non-block targets, and block devices for
// formats that cannot be written in place or that are busy.
[[nodiscard]] Result<TargetKind> check_output_target(const std::string& target, const OutputOptions& options);

// Writes the guest contents of `source` to `target` in options.format.
// Progress reports bytes of the source processed. Errors: those of
// check_output_options and check_output_target; out_of_range when a target
// device is smaller than the source; cancelled on SIGINT/SIGTERM; I/O errors.
[[nodiscard]] Result<OutputStats> write_image(BlockDevice& source, const std::string& target,
                                              const OutputOptions& options, ProgressFn progress = {});

}  // namespace utsushi::imagefmt
