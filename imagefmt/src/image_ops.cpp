#include "utsushi/imagefmt/image_ops.h"

#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <filesystem>

#include "utsushi/common/atomic_file.h"
#include "utsushi/imagefmt/copy.h"
#include "utsushi/imagefmt/registry.h"
#include "utsushi/imagefmt/ova.h"
#include "utsushi/imagefmt/vmdk.h"

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

// The copy engine and every writer report these three counts under the same names.
template <class Stats>
ConvertResult to_convert_result(const Stats& stats) {
  ConvertResult result;
  result.bytes_read = stats.bytes_read;
  result.bytes_written = stats.bytes_written;
  result.bytes_zero = stats.bytes_zero;
  return result;
}

Result<ConvertResult> convert_to_raw(BlockDevice& source, AtomicFile& file, const std::string& output,
                                     const ConvertOptions& options) {
  if (::ftruncate(file.fd(), static_cast<off_t>(source.size())) != 0) {
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
  return to_convert_result(UTSUSHI_TRY(copy_device(source, target, copy)));
}

Result<ConvertResult> convert_to_qcow2(BlockDevice& source, AtomicFile& file, const std::string& output,
                                       const ConvertOptions& options) {
  Qcow2WriteOptions q;
  q.compress = options.compress;
  q.threads = options.threads;
  q.progress = options.progress;
  if (options.compression_type == "zlib") {
    q.compression_type = qcow2::CompressionType::zlib;
  } else if (options.compression_type == "zstd" || options.compress) {
    q.compression_type = qcow2::CompressionType::zstd;  // utsushi's default for -c
  } else {
    q.compression_type = qcow2::CompressionType::zlib;  // QEMU's default header value
  }
  if (options.cluster_size) {
    std::uint64_t cs = *options.cluster_size;
    if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)) != 0) {
      return fail(Errc::invalid_argument, "cluster_size must be a power of two from 512 to 2M");
    }
    q.cluster_bits = static_cast<std::uint32_t>(std::countr_zero(cs));
  }
  return to_convert_result(UTSUSHI_TRY(write_qcow2(source, file.fd(), output, q)));
}

Result<ConvertResult> convert_to_vmdk(BlockDevice& source, AtomicFile& file, const std::string& output,
                                      const ConvertOptions& options) {
  VmdkWriteOptions v;
  v.threads = options.threads;
  v.progress = options.progress;
  v.extent_name = std::filesystem::path(output).filename().string();
  return to_convert_result(UTSUSHI_TRY(write_vmdk_stream_optimized(source, file.fd(), output, v)));
}

Result<ConvertResult> convert_to_ova(BlockDevice& source, AtomicFile& file, const std::string& output,
                                     const ConvertOptions& options) {
  OvaWriteOptions v;
  v.threads = options.threads;
  v.progress = options.progress;
  std::filesystem::path out(output);
  v.name = out.stem().string();
  if (v.name.empty()) {
    v.name = "vm";
  }
  if (options.cpus) {
    v.cpus = *options.cpus;
  }
  if (options.memory_mib) {
    v.memory_mib = *options.memory_mib;
  }
  std::string dir = out.parent_path().empty() ? "." : out.parent_path().string();
  return to_convert_result(UTSUSHI_TRY(write_ova(source, file.fd(), dir, v)));
}

}  // namespace

Result<ConvertResult> convert_image(const std::string& input, const std::string& output,
                                    const ConvertOptions& options) {
  auto start = std::chrono::steady_clock::now();
  const std::string& of = options.output_format;
  if (of != "raw" && of != "qcow2" && of != "vmdk" && of != "ova") {
    return fail(Errc::not_supported, "output format '" + of + "' is not supported by this build");
  }
  if (options.compress && of != "qcow2") {
    return fail(Errc::invalid_argument, "compression (-c) applies to qcow2 output only (vmdk grains are always compressed)");
  }
  if (options.compression_type && of != "qcow2") {
    return fail(Errc::invalid_argument, "compression_type applies to qcow2 output only");
  }
  UTSUSHI_TRY(check_distinct_output(input, output));
  auto source = UTSUSHI_TRY(open_image(input, OpenOptions{options.input_format, Access::read_only}));
  auto file = UTSUSHI_TRY(AtomicFile::create(output));
  ConvertResult result;
  if (of == "raw") {
    result = UTSUSHI_TRY(convert_to_raw(*source, file, output, options));
  } else if (of == "ova") {
    result = UTSUSHI_TRY(convert_to_ova(*source, file, output, options));
  } else if (of == "vmdk") {
    result = UTSUSHI_TRY(convert_to_vmdk(*source, file, output, options));
  } else {
    result = UTSUSHI_TRY(convert_to_qcow2(*source, file, output, options));
  }
  UTSUSHI_TRY(file.commit());
  result.virtual_size = source->size();
  result.output_file_size = allocated_bytes(output);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace utsushi::imagefmt
