#pragma once
// Free space of a filesystem, as an unprivileged writer sees it
// (statvfs(3): f_bavail blocks of f_frsize bytes; root's reserve excluded).

#include <cstdint>
#include <string>

#include "utsushi/common/error.h"

namespace utsushi {

// The free bytes of the filesystem holding `path`; its errno, naming the
// path, when statvfs fails.
[[nodiscard]] Result<std::uint64_t> free_space(const std::string& path);
// The same for the filesystem of an open file.
[[nodiscard]] Result<std::uint64_t> free_space(int fd);

}  // namespace utsushi
