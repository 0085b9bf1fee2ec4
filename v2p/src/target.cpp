#include "utsushi/v2p/target.h"

#include <fmt/core.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>

#include "utsushi/disk/partition_table.h"
#include "utsushi/imagefmt/raw.h"

namespace utsushi::v2p {
namespace {

namespace fs = std::filesystem;

std::string sysfs_of(dev_t dev) { return fmt::format("/sys/dev/block/{}:{}", major(dev), minor(dev)); }

std::string first_line(const fs::path& p) {
  std::ifstream f(p);
  std::string s;
  std::getline(f, s);
  return s;
}

// The whole disk a block device belongs to (itself when it is one).
dev_t whole_disk(dev_t dev) {
  std::error_code ec;
  fs::path node = fs::canonical(sysfs_of(dev), ec);
  if (ec || !fs::exists(node / "partition")) {
    return dev;
  }
  unsigned maj = 0, min = 0;
  if (std::sscanf(first_line(node.parent_path() / "dev").c_str(), "%u:%u", &maj, &min) == 2) {
    return makedev(maj, min);
  }
  return dev;
}

std::string device_serial(dev_t dev) {
  for (const char* f : {"/device/wwid", "/device/serial", "/serial", "/loop/backing_file"}) {
    std::string s = first_line(sysfs_of(dev) + f);
    if (!s.empty()) {
      return s;
    }
  }
  return {};
}

}  // namespace

Result<TargetInfo> describe_target(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return fail(Errc::not_found, fmt::format("target '{}' does not exist (a file target must exist at the disk's "
                                               "size: truncate -s SIZE '{}')", path, path));
    }
    return fail_errno(errno, "cannot stat target '" + path + "'");
  }
  TargetInfo t;
  t.path = path;
  if (S_ISBLK(st.st_mode)) {
    t.block_device = true;
    auto dev = UTSUSHI_TRY(imagefmt::open_raw(path));
    t.size = imagefmt::BlockDevice(std::move(dev)).size();
    t.identity = fmt::format("block:{}:{}:{}:{}", major(st.st_rdev), minor(st.st_rdev), t.size, device_serial(st.st_rdev));
  } else if (S_ISREG(st.st_mode)) {
    t.size = static_cast<std::uint64_t>(st.st_size);
    t.identity = fmt::format("file:{}:{}:{}:{}", fs::absolute(path).lexically_normal().string(), st.st_dev, st.st_ino,
                             t.size);
  } else {
    return fail(Errc::invalid_argument, fmt::format("target '{}' is {}; a target is a block device or, for tests, an "
                                                    "existing regular file", path, file_type_name(st.st_mode)));
  }
  if (t.size == 0) {
    return fail(Errc::invalid_argument, fmt::format("target '{}' has no bytes", path));
  }
  return t;
}

Result<void> check_target_free(const TargetInfo& target) {
  if (!target.block_device) {
    return {};
  }
  std::string busy = UTSUSHI_TRY(imagefmt::block_device_busy_reason(target.path));
  if (!busy.empty()) {
    return fail(Errc::failed_precondition, fmt::format("refusing to restore onto {}: {}", target.path, busy));
  }
  struct stat root {}, dev {};
  if (::stat("/", &root) == 0 && ::stat(target.path.c_str(), &dev) == 0 && major(root.st_dev) != 0 &&
      whole_disk(root.st_dev) == whole_disk(dev.st_rdev)) {
    return fail(Errc::failed_precondition,
                fmt::format("refusing to restore onto {}: it holds the running system's root filesystem", target.path));
  }
  return {};
}

Result<std::string> existing_table(imagefmt::BlockDevice& target) {
  auto t = disk::read_partition_table(target);
  if (!t) {
    // A damaged table is still a table someone may want.
    return t.error().code() == Errc::corruption ? std::string("damaged") : std::string();
  }
  return t->kind == disk::TableKind::none ? std::string() : std::string(disk::table_kind_name(t->kind));
}

Result<std::unique_ptr<imagefmt::BlockDevice>> open_target(const TargetInfo& target) {
  UTSUSHI_TRY(check_target_free(target));
  auto drv = UTSUSHI_TRY(imagefmt::open_raw(target.path, imagefmt::RawOpenOptions{imagefmt::Access::read_write, false}));
  return std::make_unique<imagefmt::BlockDevice>(std::move(drv));
}

}  // namespace utsushi::v2p
