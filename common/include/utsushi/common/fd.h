#pragma once
// Fd: move-only owner of a POSIX file descriptor, closed on destruction.
// Plus the few I/O helpers every module needs: full-length pread/pwrite that
// retry on EINTR and short transfers.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "utsushi/common/error.h"

namespace utsushi {

class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : m_fd(fd) {}
  Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const noexcept { return m_fd; }
  explicit operator bool() const noexcept { return m_fd >= 0; }
  // Gives up ownership without closing.
  int release() noexcept { return std::exchange(m_fd, -1); }
  // Closes now and reports the error close() returned (data may be lost on NFS).
  [[nodiscard]] Result<void> close();

 private:
  int m_fd = -1;
};

// open(2) with O_CLOEXEC added; the error names `path`. An open interrupted
// by a signal is retried unless cancellation was requested (then cancelled).
[[nodiscard]] Result<Fd> open_fd(const std::string& path, int flags, unsigned mode = 0644);

// Opens an existing image or device for reading (flags O_RDONLY) or writing
// in place (O_RDWR, optionally O_EXCL): only regular files and block devices
// are accepted. The open itself never blocks (O_NONBLOCK, cleared once the
// type is checked), so a FIFO, socket or character device is refused at once
// with invalid_argument naming its type, instead of waiting for a writer.
[[nodiscard]] Result<Fd> open_input(const std::string& path, int flags);

// "a FIFO", "a socket", "a character device", "a directory", "a symbolic
// link", "a block device", "a regular file" for a stat mode.
std::string_view file_type_name(unsigned mode) noexcept;

// Reads exactly buf.size() bytes at `offset`. Reading past end of file is an
// out_of_range error naming `what` (the file or device being read).
[[nodiscard]] Result<void> pread_full(int fd, std::span<std::uint8_t> buf, std::uint64_t offset,
                        std::string_view what);
// Reads up to buf.size() bytes at `offset`; returns how many were read (less only at EOF).
[[nodiscard]] Result<std::size_t> pread_some(int fd, std::span<std::uint8_t> buf, std::uint64_t offset,
                               std::string_view what);
// Writes all of buf at `offset`.
[[nodiscard]] Result<void> pwrite_full(int fd, std::span<const std::uint8_t> buf, std::uint64_t offset,
                         std::string_view what);
// Fails with invalid_argument when `output` names the same file or device as
// `input` (same device and inode, through any path or link): writing the
// output would destroy the input. A missing output is fine.
[[nodiscard]] Result<void> check_distinct_output(const std::string& input, const std::string& output);

// Writes all of buf at the current position (pipes, sockets).
[[nodiscard]] Result<void> write_full(int fd, std::span<const std::uint8_t> buf, std::string_view what);

// The run of data or hole that starts at `offset` (< size) of a file of
// `size` bytes: SEEK_DATA/SEEK_HOLE; a filesystem without them reports the
// rest as data. `end` is at most `size`. The error names `path`.
struct FileRun {
  bool data = true;
  std::uint64_t end = 0;
};
[[nodiscard]] Result<FileRun> next_file_run(int fd, std::uint64_t offset, std::uint64_t size,
                                            const std::string& path);

}  // namespace utsushi
