#pragma once
// Local capture: one source disk (block device or raw image, opened
// read-only) to one guest image holding only the used blocks, written through
// imagefmt's output entry (output.h: qcow2, optionally zstd-compressed, sparse
// raw or OVA, to a new file renamed into place only when complete, or raw in
// place onto a block device).

#include <optional>
#include <string>

#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/block_device.h"
#include "utsushi/imagefmt/output.h"
#include "utsushi/disk/disk_plan.h"
#include "utsushi/disk/verify.h"

namespace utsushi::p2v {

enum class OutputFormat { qcow2, raw, ova };
std::string_view output_format_name(OutputFormat f) noexcept;
// "qcow2", "raw" or "ova"; invalid_argument otherwise.
[[nodiscard]] Result<OutputFormat> parse_output_format(std::string_view name);
// The file name extension of a format (".qcow2", ".raw", ".ova").
std::string_view output_extension(OutputFormat f) noexcept;

struct ImageOptions {
  OutputFormat format = OutputFormat::qcow2;
  bool compress = false;  // qcow2 only: zstd clusters
  unsigned cpus = 2;                // ova only: the OVF's virtual hardware
  std::uint64_t memory_mib = 2048;  // ova only
  unsigned threads = 0;   // 0: one per core (at least 4 for I/O overlap)
  ProgressFn progress;    // bytes of the view processed / its size
};

struct ImageStats {
  std::uint64_t bytes_read = 0;     // read from the view (used bytes, zeros included)
  std::uint64_t bytes_written = 0;  // guest bytes stored in the image
  std::uint64_t file_size = 0;      // allocated bytes of the image file (a device's size)
};

// The imagefmt output options for `options` (threads: at least 4 by default).
imagefmt::OutputOptions output_options(const ImageOptions& options);

// Writes the guest contents of `view` (a used-block view or any device) to
// `output` through imagefmt::write_image: a new file, atomically (on failure
// no file appears at `output`), or a block device in place (raw).
[[nodiscard]] Result<ImageStats> write_image(imagefmt::BlockDevice& view, const std::string& output, const ImageOptions& options);

using VerifyStats = disk::VerifyStats;

// Re-reads every used range of `source` and of the image at `image_path` and
// compares them chunk by chunk (XXH64). Errc::corruption names the first
// mismatching offset; the image size must equal the source size.
[[nodiscard]] Result<VerifyStats> verify_image(imagefmt::BlockDevice& source, const disk::ByteRanges& used, const std::string& image_path,
                                 unsigned threads = 0, ProgressFn progress = {});

struct CaptureOptions {
  ImageOptions image;
  bool verify = false;
  ProgressFn verify_progress;
};

struct CaptureResult {
  disk::DiskPlan plan;
  std::string output;
  ImageStats stats;
  std::optional<VerifyStats> verify;
  double seconds = 0;
};

// Checks the output (imagefmt::check_output_target), then opens `source`
// read-only, plans it, writes `output`, optionally verifies.
[[nodiscard]] Result<CaptureResult> capture_disk(const std::string& source, const std::string& output,
                                   const CaptureOptions& options);

// Opens a capture source: a block device or raw image, read-only (a FIFO or
// other special file is refused at once).
[[nodiscard]] Result<std::unique_ptr<imagefmt::BlockDevice>> open_source(const std::string& source);

}  // namespace utsushi::p2v
