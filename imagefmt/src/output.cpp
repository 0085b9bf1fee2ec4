#include "utsushi/imagefmt/output.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <filesystem>

#include "utsushi/common/atomic_file.h"
#include "utsushi/imagefmt/copy.h"
#include "utsushi/imagefmt/filter.h"
#include "utsushi/imagefmt/ova.h"
#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/raw.h"
#include "utsushi/imagefmt/vmdk.h"

namespace utsushi::imagefmt {
namespace {

constexpr std::string_view k_qcow2_options[] = {k_opt_compression_type, k_opt_cluster_size};
constexpr std::string_view k_ova_options[] = {k_opt_cpus, k_opt_memory};
constexpr std::uint64_t k_min_cluster = 512, k_max_cluster = 2u << 20;

constexpr WritableFormat k_formats[] = {
    {"raw", "raw disk image or block device", ".raw", false, {}, true},
    {"qcow2", "QEMU copy-on-write v3", ".qcow2", true, k_qcow2_options, false},
    {"vmdk", "VMware streamOptimized VMDK", ".vmdk", false, {}, false},
    {"ova", "Open Virtualization Appliance (OVF + streamOptimized VMDK)", ".ova", false, k_ova_options, false},
};

bool takes(const WritableFormat& f, std::string_view option) {
  return std::find(f.options.begin(), f.options.end(), option) != f.options.end();
}

std::uint64_t allocated_bytes(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_blocks) * 512 : 0;
}

template <class Stats>
OutputStats to_output_stats(const Stats& s) {
  OutputStats o;
  o.bytes_read = s.bytes_read;
  o.bytes_written = s.bytes_written;
  o.bytes_zero = s.bytes_zero;
  return o;
}

Result<OutputStats> write_raw_file(BlockDevice& source, AtomicFile& file, const OutputOptions& o, ProgressFn progress) {
  if (::ftruncate(file.fd(), static_cast<off_t>(source.size())) != 0) {
    return fail_errno(errno, "cannot size '" + file.temp_path() + "'");
  }
  int dup_fd = ::dup(file.fd());
  if (dup_fd < 0) {
    return fail_errno(errno, "dup");
  }
  BlockDevice target(UTSUSHI_TRY(raw_from_fd(Fd(dup_fd), file.final_path(), Access::read_write)));
  CopyOptions copy;
  copy.target_is_zeroed = true;  // a fresh sparse file
  copy.threads = o.threads;
  copy.progress = std::move(progress);
  return to_output_stats(UTSUSHI_TRY(copy_device(source, target, copy)));
}

Result<OutputStats> write_qcow2_file(BlockDevice& source, AtomicFile& file, const OutputOptions& o, ProgressFn progress) {
  Qcow2WriteOptions q;
  q.compress = o.compress;
  q.threads = o.threads;
  q.progress = std::move(progress);
  // zstd for -c unless named; otherwise QEMU's default header value (zlib),
  // which every QEMU reads.
  q.compression_type = o.compression_type == "zstd" || (o.compress && !o.compression_type)
                           ? qcow2::CompressionType::zstd
                           : qcow2::CompressionType::zlib;
  if (o.cluster_size) {
    q.cluster_bits = static_cast<std::uint32_t>(std::countr_zero(*o.cluster_size));
  }
  return to_output_stats(UTSUSHI_TRY(write_qcow2(source, file.fd(), file.final_path(), q)));
}

Result<OutputStats> write_vmdk_file(BlockDevice& source, AtomicFile& file, const OutputOptions& o, ProgressFn progress) {
  VmdkWriteOptions v;
  v.threads = o.threads;
  v.progress = std::move(progress);
  v.extent_name = std::filesystem::path(file.final_path()).filename().string();
  return to_output_stats(UTSUSHI_TRY(write_vmdk_stream_optimized(source, file.fd(), file.final_path(), v)));
}

Result<OutputStats> write_ova_file(BlockDevice& source, AtomicFile& file, const OutputOptions& o, ProgressFn progress) {
  std::filesystem::path out(file.final_path());
  OvaWriteOptions v;
  v.name = out.stem().empty() ? std::string("vm") : out.stem().string();
  v.cpus = o.cpus.value_or(v.cpus);
  v.memory_mib = o.memory_mib.value_or(v.memory_mib);
  v.threads = o.threads;
  v.progress = std::move(progress);
  std::string dir = out.parent_path().empty() ? std::string(".") : out.parent_path().string();
  return to_output_stats(UTSUSHI_TRY(write_ova(source, file.fd(), dir, v)));
}

Result<OutputStats> write_file(BlockDevice& source, const std::string& target, const WritableFormat& f,
                               const OutputOptions& o, ProgressFn progress) {
  auto file = UTSUSHI_TRY(AtomicFile::create(target));
  OutputStats stats;
  if (f.name == "raw") {
    stats = UTSUSHI_TRY(write_raw_file(source, file, o, std::move(progress)));
  } else if (f.name == "qcow2") {
    stats = UTSUSHI_TRY(write_qcow2_file(source, file, o, std::move(progress)));
  } else if (f.name == "vmdk") {
    stats = UTSUSHI_TRY(write_vmdk_file(source, file, o, std::move(progress)));
  } else {
    stats = UTSUSHI_TRY(write_ova_file(source, file, o, std::move(progress)));
  }
  stats.output_size = allocated_bytes(file.fd());
  UTSUSHI_TRY(file.commit());
  return stats;
}

// In place onto a block device: every byte of the source is written (zeros
// included: the device holds old data), then the device is flushed.
Result<OutputStats> write_device(BlockDevice& source, const std::string& target, const OutputOptions& o,
                                 ProgressFn progress) {
  BlockDevice device(UTSUSHI_TRY(open_raw(target, RawOpenOptions{Access::read_write, false})));
  if (device.size() < source.size()) {
    return fail(Errc::out_of_range, target + " holds " + std::to_string(device.size()) + " bytes; the image needs " +
                                        std::to_string(source.size()));
  }
  BlockDevice* dest = &device;
  std::unique_ptr<BlockDevice> window;
  if (device.size() > source.size()) {
    window = std::make_unique<BlockDevice>(UTSUSHI_TRY(WindowFilter::create(device, 0, source.size(), target)));
    dest = window.get();
  }
  CopyOptions copy;
  copy.target_is_zeroed = false;
  copy.threads = o.threads;
  copy.progress = std::move(progress);
  OutputStats stats = to_output_stats(UTSUSHI_TRY(copy_device(source, *dest, copy)));
  UTSUSHI_TRY(device.flush());
  stats.output_size = device.size();
  stats.block_device = true;
  return stats;
}

}  // namespace

std::span<const WritableFormat> writable_formats() noexcept { return k_formats; }

Result<const WritableFormat*> find_writable_format(std::string_view name) {
  for (const WritableFormat& f : k_formats) {
    if (f.name == name) {
      return &f;
    }
  }
  std::string names;
  for (const WritableFormat& f : k_formats) {
    names += (names.empty() ? "" : ", ") + std::string(f.name);
  }
  return fail(Errc::not_supported, "output format '" + std::string(name) + "' is not supported (" + names + ")");
}

Result<const WritableFormat*> check_output_options(const OutputOptions& o) {
  const WritableFormat* f = UTSUSHI_TRY(find_writable_format(o.format));
  auto refuse = [&](std::string_view what) {
    return fail(Errc::invalid_argument, std::string(what) + " does not apply to " + std::string(f->name) + " output");
  };
  if (o.compress && !f->compress) {
    return refuse(f->name == "vmdk" || f->name == "ova" ? "compression (-c; VMDK grains are always compressed)"
                                                        : "compression (-c)");
  }
  const std::pair<bool, std::string_view> given[] = {{o.compression_type.has_value(), k_opt_compression_type},
                                                     {o.cluster_size.has_value(), k_opt_cluster_size},
                                                     {o.cpus.has_value(), k_opt_cpus},
                                                     {o.memory_mib.has_value(), k_opt_memory}};
  for (const auto& [set, name] : given) {
    if (set && !takes(*f, name)) {
      return refuse("the option " + std::string(name));
    }
  }
  if (o.compression_type && *o.compression_type != "zstd" && *o.compression_type != "zlib") {
    return fail(Errc::invalid_argument, "compression_type must be zstd or zlib");
  }
  if (o.cluster_size) {
    std::uint64_t cs = *o.cluster_size;
    if (cs < k_min_cluster || cs > k_max_cluster || !std::has_single_bit(cs)) {
      return fail(Errc::invalid_argument, "cluster_size must be a power of two from 512 to 2M");
    }
  }
  if ((o.cpus && *o.cpus == 0) || (o.memory_mib && *o.memory_mib == 0)) {
    return fail(Errc::invalid_argument, "cpus and memory must be at least 1");
  }
  return f;
}

Result<TargetKind> check_output_target(const std::string& target, const OutputOptions& options) {
  const WritableFormat* f = UTSUSHI_TRY(check_output_options(options));
  if (target.empty()) {
    return fail(Errc::invalid_argument, "empty output name");
  }
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return TargetKind::new_file;
    }
    return fail_errno(errno, "cannot stat output '" + target + "'");
  }
  if (S_ISREG(st.st_mode)) {
    return TargetKind::new_file;
  }
  if (!S_ISBLK(st.st_mode)) {
    return fail(Errc::invalid_argument, "output '" + target + "' is " + std::string(file_type_name(st.st_mode)) +
                                            "; outputs are regular files (replaced) or block devices (written in place)");
  }
  if (!f->block_device) {
    return fail(Errc::not_supported, "output '" + target + "' is a block device: only raw output is written onto "
                                     "a block device (not " + std::string(f->name) + ")");
  }
  std::string busy = UTSUSHI_TRY(block_device_busy_reason(target));
  if (!busy.empty()) {
    return fail(Errc::failed_precondition, "refusing to write to " + target + ": " + busy);
  }
  return TargetKind::block_device;
}

Result<OutputStats> write_image(BlockDevice& source, const std::string& target, const OutputOptions& options,
                                ProgressFn progress) {
  const WritableFormat* f = UTSUSHI_TRY(check_output_options(options));
  TargetKind kind = UTSUSHI_TRY(check_output_target(target, options));
  if (kind == TargetKind::block_device) {
    return write_device(source, target, options, std::move(progress));
  }
  return write_file(source, target, *f, options, std::move(progress));
}

}  // namespace utsushi::imagefmt
