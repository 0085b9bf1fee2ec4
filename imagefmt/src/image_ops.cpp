#include "utsushi/imagefmt/image_ops.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "utsushi/common/atomic_file.h"
#include "utsushi/imagefmt/copy.h"
#include "utsushi/imagefmt/registry.h"

namespace utsushi::imagefmt {
namespace {

std::uint64_t allocated_bytes(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return 0;
  }
  if (S_ISBLK(st.st_mode)) {
    return 0;
  }
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

}  // namespace

Result<ImageInfo> image_info(const std::string& path, const std::optional<std::string>& format) {
  auto dev = UTSUSHI_TRY(open_image(path, OpenOptions{format, Access::read_only}));
  ImageInfo info;
  info.filename = path;
  info.format = std::string(dev->format_name());
  info.virtual_size = dev->size();
  info.actual_size = allocated_bytes(path);
  for (const Extent& e : UTSUSHI_TRY(dev->extents())) {
    if (e.type == ExtentType::data) {
      info.data_bytes += e.length;
    }
  }
  return info;
}

Result<std::vector<Extent>> image_map(const std::string& path, const std::optional<std::string>& format) {
  auto dev = UTSUSHI_TRY(open_image(path, OpenOptions{format, Access::read_only}));
  return dev->extents();
}

Result<ConvertResult> convert_image(const std::string& input, const std::string& output,
                                    const ConvertOptions& options) {
  auto start = std::chrono::steady_clock::now();
  if (options.output_format != "raw") {
    return fail(Errc::not_supported, "output format '" + options.output_format + "' is not supported by this build");
  }
  if (options.compress) {
    return fail(Errc::invalid_argument, "compression (-c) needs a compressing output format, not raw");
  }
  auto source = UTSUSHI_TRY(open_image(input, OpenOptions{options.input_format, Access::read_only}));

  auto file = UTSUSHI_TRY(AtomicFile::create(output));
  if (::ftruncate(file.fd(), static_cast<off_t>(source->size())) != 0) {
    return fail_errno(errno, "cannot size '" + file.temp_path() + "'");
  }
  int dup_fd = ::dup(file.fd());
  if (dup_fd < 0) {
    return fail_errno(errno, "dup");
  }
  auto driver = UTSUSHI_TRY(raw_from_fd(Fd(dup_fd), output, Access::read_write));
  BlockDevice target(std::move(driver));

  CopyOptions copy;
  copy.target_is_zeroed = true;  // a fresh sparse file
  copy.threads = options.threads;
  copy.progress = options.progress;
  auto stats = UTSUSHI_TRY(copy_device(*source, target, copy));
  UTSUSHI_TRY(file.commit());

  ConvertResult result;
  result.virtual_size = source->size();
  result.bytes_read = stats.bytes_read;
  result.bytes_written = stats.bytes_written;
  result.bytes_zero = stats.bytes_zero;
  result.output_file_size = allocated_bytes(output);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace utsushi::imagefmt
