#include "utsushi/p2v/capture.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "utsushi/disk/used_blocks_filter.h"
#include "utsushi/imagefmt/raw.h"

namespace utsushi::p2v {

namespace {

constexpr OutputFormat k_output_formats[] = {OutputFormat::qcow2, OutputFormat::raw, OutputFormat::ova};

unsigned io_threads(unsigned requested) {
  if (requested != 0) {
    return requested;
  }
  // Reads from a disk overlap best with a few requests in flight even on few cores.
  return std::max(4u, std::thread::hardware_concurrency());
}

}  // namespace

std::string_view output_format_name(OutputFormat f) noexcept {
  switch (f) {
    case OutputFormat::raw: return "raw";
    case OutputFormat::ova: return "ova";
    case OutputFormat::qcow2: break;
  }
  return "qcow2";
}

Result<OutputFormat> parse_output_format(std::string_view name) {
  for (OutputFormat f : k_output_formats) {
    if (name == output_format_name(f)) {
      return f;
    }
  }
  return fail(Errc::invalid_argument, "unknown output format '" + std::string(name) + "' (qcow2, raw or ova)");
}

std::string_view output_extension(OutputFormat f) noexcept {
  auto entry = imagefmt::find_writable_format(output_format_name(f));
  return entry ? (*entry)->extension : std::string_view(".img");
}

imagefmt::OutputOptions output_options(const ImageOptions& options) {
  imagefmt::OutputOptions o;
  o.format = std::string(output_format_name(options.format));
  o.compress = options.compress;
  if (options.format == OutputFormat::ova) {
    o.cpus = options.cpus;
    o.memory_mib = options.memory_mib;
  }
  o.threads = io_threads(options.threads);
  return o;
}

Result<std::unique_ptr<imagefmt::BlockDevice>> open_source(const std::string& source) {
  imagefmt::RawOpenOptions o;
  o.access = imagefmt::Access::read_only;  // never write to a source
  auto driver = UTSUSHI_TRY(imagefmt::open_raw(source, o));
  return std::make_unique<imagefmt::BlockDevice>(std::move(driver));
}

Result<ImageStats> write_image(imagefmt::BlockDevice& view, const std::string& output, const ImageOptions& options) {
  auto s = UTSUSHI_TRY(imagefmt::write_image(view, output, output_options(options), options.progress));
  return ImageStats{s.bytes_read, s.bytes_written, s.output_size};
}

Result<CaptureResult> capture_disk(const std::string& source, const std::string& output,
                                   const CaptureOptions& options) {
  auto start = std::chrono::steady_clock::now();
  // Every refusal of the output comes before the source is read.
  UTSUSHI_TRY(imagefmt::check_output_target(output, output_options(options.image)));
  UTSUSHI_TRY(check_distinct_output(source, output));
  auto disk = UTSUSHI_TRY(open_source(source));
  CaptureResult r;
  r.plan = UTSUSHI_TRY(disk::plan_disk(*disk, source));
  r.output = output;
  auto view = disk::make_used_view(*disk, r.plan.used);
  r.stats = UTSUSHI_TRY(write_image(*view, output, options.image));
  if (options.verify) {
    r.verify = UTSUSHI_TRY(verify_image(*disk, r.plan.used, output, options.image.threads, options.verify_progress));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace utsushi::p2v
