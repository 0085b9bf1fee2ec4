#include "utsushi/common/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>

namespace utsushi {

namespace {

std::uint64_t available(const struct statvfs& v) { return std::uint64_t{v.f_bavail} * v.f_frsize; }

}  // namespace

Result<std::uint64_t> free_space(const std::string& path) {
  struct statvfs v {};
  if (::statvfs(path.c_str(), &v) != 0) {
    return fail_errno(errno, "statvfs " + path);
  }
  return available(v);
}

Result<std::uint64_t> free_space(int fd) {
  struct statvfs v {};
  if (::fstatvfs(fd, &v) != 0) {
    return fail_errno(errno, "fstatvfs");
  }
  return available(v);
}

}  // namespace utsushi
