#pragma once
// qcow2: reading (a thread-safe BlockDriver), one-pass writing for convert,
// empty overlays over a backing file, and a consistency check with qemu-img's
// semantics. Layout and constants: qcow2_format.h.
//
// Reader: v2 and v3, clusters of 512 B to 2 MiB, refcount widths 1-64 bits,
// zero clusters, zlib and zstd compressed clusters, extended L2 (subclusters),
// backing chains (the backing format honoured, relative names resolved from
// the overlay's directory, depth-limited and loop-checked). Internal snapshots
// are listed; the active layer is read. Encrypted images and external data
// files are refused (Errc::not_supported). pread/extents are safe for
// concurrent use (an L2 cache behind a mutex, positional data reads).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/block_device.h"
#include "utsushi/imagefmt/check_report.h"
#include "utsushi/imagefmt/qcow2_format.h"
#include "utsushi/imagefmt/registry.h"

namespace utsushi::imagefmt {

// Deepest backing chain opened (the image itself is depth 0).
inline constexpr int k_max_backing_depth = 32;

struct Qcow2Details {
  std::uint32_t version = 3;
  std::uint64_t cluster_size = 0;
  std::uint32_t refcount_bits = 16;
  std::string compression_type;  // "zlib" | "zstd"
  bool extended_l2 = false;
  bool dirty = false;
  bool corrupt = false;
  bool lazy_refcounts = false;
  std::string backing_file;           // as stored in the image ("" when none)
  std::string backing_file_resolved;  // the path opened
  std::string backing_format;         // from the header extension, or probed
  std::vector<qcow2::Snapshot> snapshots;
};

// Opens a qcow2 image read-only (registry entry point). Fails with
// not_supported for read_write access.
[[nodiscard]] Result<std::unique_ptr<BlockDriver>> open_qcow2(const std::string& path, const OpenOptions& options,
                                                              bool probed);

// The qcow2 details of an open device, or nullptr when it is not qcow2.
const Qcow2Details* qcow2_details(BlockDevice& device);
// The backing device of a qcow2 device, or nullptr.
BlockDevice* qcow2_backing(BlockDevice& device);

struct Qcow2WriteOptions {
  std::uint32_t cluster_bits = 16;  // 64 KiB
  bool compress = false;
  qcow2::CompressionType compression_type = qcow2::CompressionType::zstd;
  int level = 0;         // 0: the codec's QEMU default (zstd 3, zlib 6)
  unsigned threads = 0;  // 0: one per core
  ProgressFn progress;   // source bytes processed / source size
};

struct Qcow2WriteStats {
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;  // guest bytes stored (before compression)
  std::uint64_t bytes_zero = 0;
  std::uint64_t clusters_compressed = 0;
  std::uint64_t file_size = 0;
};

// Writes the guest contents of `source` as a new qcow2 v3 image (16-bit
// refcounts) into the empty regular file `fd`, in one pass: data clusters are
// appended in guest order (all-zero clusters are not allocated), compressed on
// every core when asked and written in order; L2 tables, refcounts and the L1
// are written after the data and the header last. The caller makes the file
// visible (AtomicFile) only after success. `fd` is not closed.
[[nodiscard]] Result<Qcow2WriteStats> write_qcow2(BlockDevice& source, int fd, const std::string& description,
                                                  const Qcow2WriteOptions& options);

// Creates an empty qcow2 v3 image of `size` bytes (not 0) at `path`
// (atomically), with no backing file: what `qemu-img create -f qcow2` makes.
[[nodiscard]] Result<void> create_qcow2(const std::string& path, std::uint64_t size);

// Creates an empty qcow2 v3 overlay at `path` (atomically) whose backing file is
// `backing` (stored as given; relative names resolve from `path`'s directory)
// with format `backing_format`. The virtual size is the backing's unless
// `size` is given.
[[nodiscard]] Result<void> create_qcow2_overlay(const std::string& path, const std::string& backing,
                                                const std::string& backing_format,
                                                std::optional<std::uint64_t> size = {});

// The check's report (check_report.h); the qcow2 name stays for callers.
using Qcow2CheckReport = CheckReport;

// Rebuilds the refcounts of the image at `path` from its metadata and compares
// them with the stored ones, as `qemu-img check` does, with its counts:
// under-counted clusters, bad OFLAG_COPIED bits, damaged entries (reserved
// bits, misalignment: reported, then counted as what they point at) and every
// region reaching a cluster or more past the end of the file (a truncated
// image; the file reads as zeros past its end) are corruptions; over-counted
// clusters are leaks. A structure that cannot be read (I/O error, a
// misaligned refcount block) is a check error: the check goes on without it.
// Fails only when the image cannot be opened or its header decoded.
[[nodiscard]] Result<Qcow2CheckReport> check_qcow2(const std::string& path);
// The same on an open file (`name` for messages).
[[nodiscard]] Result<Qcow2CheckReport> check_qcow2(BlockDevice& file, const std::string& name);

}  // namespace utsushi::imagefmt
