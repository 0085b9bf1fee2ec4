#pragma once
// Whole-image operations behind `utsushi-img`: info, convert, map.
// Each takes paths and options and returns a result struct the CLI prints as
// text or JSON.

#include <optional>
#include <string>
#include <vector>

#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/block_driver.h"
#include "utsushi/imagefmt/qcow2.h"

namespace utsushi::imagefmt {

struct ImageInfo {
  std::string filename;
  std::string format;
  std::uint64_t virtual_size = 0;
  std::uint64_t actual_size = 0;  // bytes allocated on the host (st_blocks * 512)
  std::uint64_t data_bytes = 0;   // guest bytes reported as data by extents
  std::optional<Qcow2Details> qcow2;  // format-specific details of a qcow2 image
  // The backing chain below this image, nearest first (filename, format, size).
  struct Backing {
    std::string filename;
    std::string format;
    std::uint64_t virtual_size = 0;
  };
  std::vector<Backing> backing_chain;
};

[[nodiscard]] Result<ImageInfo> image_info(const std::string& path, const std::optional<std::string>& format);

struct ConvertOptions {
  std::optional<std::string> input_format;  // probe when empty
  std::string output_format = "raw";
  bool compress = false;
  std::optional<std::string> compression_type;  // "zstd" | "zlib"
  std::optional<std::uint64_t> cluster_size;    // qcow2 output (default 64 KiB)
  std::optional<unsigned> cpus;                 // ova output: virtual CPUs (default 2)
  std::optional<std::uint64_t> memory_mib;      // ova output: memory in MiB (default 2048)
  unsigned threads = 0;
  ProgressFn progress;
};

struct ConvertResult {
  std::uint64_t virtual_size = 0;
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t bytes_zero = 0;
  std::uint64_t output_file_size = 0;  // allocated bytes of an output file; a device's size
  double seconds = 0;
};

// Converts `input` to `output` through write_image (output.h): a new file,
// written under a temporary name and renamed into place only when complete
// (on any failure, cancellation included, no file appears under `output`),
// or a block device written in place (raw). Format, options and the kind of
// output are checked before the input is opened.
[[nodiscard]] Result<ConvertResult> convert_image(const std::string& input, const std::string& output,
                                    const ConvertOptions& options);

// Checks an image's consistency (qcow2: qemu-img check semantics). Fails with
// not_supported for formats without a check.
[[nodiscard]] Result<Qcow2CheckReport> check_image(const std::string& path, const std::optional<std::string>& format);

// The guest-visible extents of an image.
[[nodiscard]] Result<std::vector<Extent>> image_map(const std::string& path, const std::optional<std::string>& format);

}  // namespace utsushi::imagefmt
