#include "utsushi/common/fd.h"

#include "utsushi/common/cancel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace utsushi {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = std::exchange(other.m_fd, -1);
  }
  return *this;
}

Fd::~Fd() {
  if (m_fd >= 0) {
    ::close(m_fd);  // errors here cannot be reported; callers that care use close()
  }
}

Result<void> Fd::close() {
  if (m_fd < 0) {
    return {};
  }
  int fd = std::exchange(m_fd, -1);
  if (::close(fd) != 0 && errno != EINTR) {  // never retry close (the fd is gone)
    return fail_errno(errno, "close");
  }
  return {};
}

Result<Fd> open_fd(const std::string& path, int flags, unsigned mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR && !cancel_requested());
  if (fd < 0) {
    return fail_errno(errno, "cannot open '" + path + "'");
  }
  return Fd(fd);
}

std::string_view file_type_name(unsigned mode) noexcept {
  switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFBLK: return "a block device";
    case S_IFCHR: return "a character device";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symbolic link";
    default: break;
  }
  return "an unknown kind of file";
}

Result<Fd> open_input(const std::string& path, int flags) {
  Fd fd = UTSUSHI_TRY(open_fd(path, flags | O_NONBLOCK | O_NOCTTY));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail_errno(errno, "cannot stat '" + path + "'");
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return fail(Errc::invalid_argument, "'" + path + "' is " + std::string(file_type_name(st.st_mode)) +
                                            ", not an image file or a block device");
  }
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) {
    return fail_errno(errno, "cannot clear O_NONBLOCK on '" + path + "'");
  }
  return fd;
}

Result<void> check_distinct_output(const std::string& input, const std::string& output) {
  struct stat in {}, out {};
  if (::stat(output.c_str(), &out) != 0) {
    return {};  // no such output yet
  }
  if (::stat(input.c_str(), &in) != 0) {
    return fail_errno(errno, "cannot stat '" + input + "'");
  }
  bool same = S_ISBLK(in.st_mode) && S_ISBLK(out.st_mode) ? in.st_rdev == out.st_rdev
                                                          : in.st_dev == out.st_dev && in.st_ino == out.st_ino;
  if (same) {
    return fail(Errc::invalid_argument, "output '" + output + "' is the input '" + input + "'; refusing to overwrite it");
  }
  return {};
}

Result<std::size_t> pread_some(int fd, std::span<std::uint8_t> buf, std::uint64_t offset,
                               std::string_view what) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, std::string(what) + ": read at offset " + std::to_string(offset + done));
    }
    if (n == 0) {
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}

Result<void> pread_full(int fd, std::span<std::uint8_t> buf, std::uint64_t offset,
                        std::string_view what) {
  std::size_t n = UTSUSHI_TRY(pread_some(fd, buf, offset, what));
  if (n != buf.size()) {
    return fail(Errc::out_of_range, std::string(what) + ": unexpected end of file at offset " +
                                        std::to_string(offset + n) + " (wanted " +
                                        std::to_string(buf.size()) + " bytes at " +
                                        std::to_string(offset) + ")");
  }
  return {};
}

Result<void> pwrite_full(int fd, std::span<const std::uint8_t> buf, std::uint64_t offset,
                         std::string_view what) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pwrite(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, std::string(what) + ": write at offset " + std::to_string(offset + done));
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> write_full(int fd, std::span<const std::uint8_t> buf, std::string_view what) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, std::string(what) + ": write");
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<FileRun> next_file_run(int fd, std::uint64_t offset, std::uint64_t size, const std::string& path) {
  off_t data = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
  if (data < 0 && errno == ENXIO) {
    return FileRun{false, size};  // a hole up to the end
  }
  if (data < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
    return FileRun{true, size};  // no SEEK_DATA on this filesystem
  }
  if (data < 0) {
    return fail_errno(errno, path + ": SEEK_DATA");
  }
  if (static_cast<std::uint64_t>(data) > offset) {
    return FileRun{false, std::min<std::uint64_t>(static_cast<std::uint64_t>(data), size)};
  }
  off_t hole = ::lseek(fd, static_cast<off_t>(offset), SEEK_HOLE);
  if (hole < 0) {
    return fail_errno(errno, path + ": SEEK_HOLE");
  }
  return FileRun{true, std::max(offset + 1, std::min<std::uint64_t>(static_cast<std::uint64_t>(hole), size))};
}

}  // namespace utsushi
