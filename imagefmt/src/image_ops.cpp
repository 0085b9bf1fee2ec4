#include "utsushi/imagefmt/image_ops.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "utsushi/imagefmt/output.h"
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
  if (const Qcow2Details* d = qcow2_details(*dev)) {
    info.qcow2 = *d;
  }
  // Walk the backing chain.
  BlockDevice* cur = dev.get();
  while (cur != nullptr) {
    const Qcow2Details* d = qcow2_details(*cur);
    BlockDevice* below = qcow2_backing(*cur);
    if (d == nullptr || below == nullptr) {
      break;
    }
    info.backing_chain.push_back({d->backing_file_resolved, d->backing_format, below->size()});
    cur = below;
  }
  return info;
}

Result<std::vector<Extent>> image_map(const std::string& path, const std::optional<std::string>& format) {
  auto dev = UTSUSHI_TRY(open_image(path, OpenOptions{format, Access::read_only}));
  return dev->extents();
}

Result<Qcow2CheckReport> check_image(const std::string& path, const std::optional<std::string>& format) {
  std::string fmt = format ? *format : UTSUSHI_TRY(probe_path(path)).format;
  if (fmt != "qcow2") {
    return fail(Errc::not_supported, "'" + path + "': format '" + fmt + "' does not support checks");
  }
  return check_qcow2(path);
}

namespace {

OutputOptions output_options(const ConvertOptions& c) {
  OutputOptions o;
  o.format = c.output_format;
  o.compress = c.compress;
  o.compression_type = c.compression_type;
  o.cluster_size = c.cluster_size;
  o.cpus = c.cpus;
  o.memory_mib = c.memory_mib;
  o.threads = c.threads;
  return o;
}

}  // namespace

Result<ConvertResult> convert_image(const std::string& input, const std::string& output,
                                    const ConvertOptions& options) {
  auto start = std::chrono::steady_clock::now();
  const OutputOptions out = output_options(options);
  // Every refusal (format, options, the kind of output) comes before any work.
  UTSUSHI_TRY(check_output_target(output, out));
  UTSUSHI_TRY(check_distinct_output(input, output));
  auto source = UTSUSHI_TRY(open_image(input, OpenOptions{options.input_format, Access::read_only}));
  OutputStats s = UTSUSHI_TRY(write_image(*source, output, out, options.progress));
  ConvertResult result;
  result.bytes_read = s.bytes_read;
  result.bytes_written = s.bytes_written;
  result.bytes_zero = s.bytes_zero;
  result.output_file_size = s.output_size;
  result.virtual_size = source->size();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace utsushi::imagefmt
