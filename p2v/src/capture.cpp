#include "utsushi/p2v/capture.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "utsushi/common/atomic_file.h"
#include <filesystem>

#include "utsushi/imagefmt/copy.h"
#include "utsushi/imagefmt/ova.h"
#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/raw.h"
#include "utsushi/disk/used_blocks_filter.h"

namespace utsushi::p2v {

std::string_view output_format_name(OutputFormat f) noexcept {
  switch (f) {
    case OutputFormat::raw: return "raw";
    case OutputFormat::ova: return "ova";
    case OutputFormat::qcow2: break;
  }
  return "qcow2";
}

Result<OutputFormat> parse_output_format(std::string_view name) {
  for (OutputFormat f : {OutputFormat::qcow2, OutputFormat::raw, OutputFormat::ova}) {
    if (name == output_format_name(f)) {
      return f;
    }
  }
  return fail(Errc::invalid_argument, "unknown output format '" + std::string(name) + "' (qcow2, raw or ova)");
}

std::string_view output_extension(OutputFormat f) noexcept {
  switch (f) {
    case OutputFormat::raw: return ".raw";
    case OutputFormat::ova: return ".ova";
    case OutputFormat::qcow2: break;
  }
  return ".qcow2";
}

namespace {

unsigned io_threads(unsigned requested) {
  if (requested != 0) {
    return requested;
  }
  // Reads from a disk overlap best with a few requests in flight even on few cores.
  return std::max(4u, std::thread::hardware_concurrency());
}

std::uint64_t allocated_bytes(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_blocks) * 512 : 0;
}

}  // namespace

Result<std::unique_ptr<imagefmt::BlockDevice>> open_source(const std::string& source) {
  imagefmt::RawOpenOptions o;
  o.access = imagefmt::Access::read_only;  // never write to a source
  auto driver = UTSUSHI_TRY(imagefmt::open_raw(source, o));
  return std::make_unique<imagefmt::BlockDevice>(std::move(driver));
}

Result<ImageStats> write_image(imagefmt::BlockDevice& view, const std::string& output, const ImageOptions& options) {
  if (options.compress && options.format != OutputFormat::qcow2) {
    return fail(Errc::invalid_argument, "compression (-c) needs qcow2 output");
  }
  auto file = UTSUSHI_TRY(AtomicFile::create(output));
  ImageStats stats;
  if (options.format == OutputFormat::raw) {
    if (::ftruncate(file.fd(), static_cast<off_t>(view.size())) != 0) {
      return fail_errno(errno, "cannot size '" + file.temp_path() + "'");
    }
    int dup_fd = ::dup(file.fd());
    if (dup_fd < 0) {
      return fail_errno(errno, "dup");
    }
    auto driver = UTSUSHI_TRY(imagefmt::raw_from_fd(Fd(dup_fd), output, imagefmt::Access::read_write));
    imagefmt::BlockDevice target(std::move(driver));
    imagefmt::CopyOptions c;
    c.target_is_zeroed = true;
    c.threads = io_threads(options.threads);
    c.progress = options.progress;
    auto s = UTSUSHI_TRY(imagefmt::copy_device(view, target, c));
    stats.bytes_read = s.bytes_read;
    stats.bytes_written = s.bytes_written;
  } else if (options.format == OutputFormat::ova) {
    imagefmt::OvaWriteOptions v;
    std::filesystem::path out(output);
    v.name = out.stem().empty() ? std::string("vm") : out.stem().string();
    v.cpus = options.cpus;
    v.memory_mib = options.memory_mib;
    v.threads = options.threads;
    v.progress = options.progress;
    std::string dir = out.parent_path().empty() ? std::string(".") : out.parent_path().string();
    auto s = UTSUSHI_TRY(imagefmt::write_ova(view, file.fd(), dir, v));
    stats.bytes_read = s.bytes_read;
    stats.bytes_written = s.bytes_written;
  } else {
    imagefmt::Qcow2WriteOptions q;
    q.compress = options.compress;
    q.compression_type = imagefmt::qcow2::CompressionType::zstd;
    q.threads = options.threads;
    q.progress = options.progress;
    auto s = UTSUSHI_TRY(imagefmt::write_qcow2(view, file.fd(), output, q));
    stats.bytes_read = s.bytes_read;
    stats.bytes_written = s.bytes_written;
  }
  stats.file_size = allocated_bytes(file.fd());
  UTSUSHI_TRY(file.commit());
  return stats;
}

Result<CaptureResult> capture_disk(const std::string& source, const std::string& output,
                                   const CaptureOptions& options) {
  auto start = std::chrono::steady_clock::now();
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
