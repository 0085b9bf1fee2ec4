#include "utsushi/common/atomic_file.h"

#include <fmt/format.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <filesystem>

namespace utsushi {
namespace {

constexpr std::string_view k_temp_marker = ".utsushi-";
constexpr std::string_view k_temp_suffix = ".tmp";
constexpr int k_max_create_attempts = 1000;

std::atomic<unsigned> g_temp_counter{0};

std::string parent_dir(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// The writer's PID of a temporary name ".NAME.utsushi-PID-N.tmp"; 0 when
// `name` is not one.
pid_t temp_owner(std::string_view name) {
  if (name.size() < 2 || name[0] != '.' || !name.ends_with(k_temp_suffix)) {
    return 0;
  }
  std::string_view core = name.substr(0, name.size() - k_temp_suffix.size());
  std::size_t at = core.rfind(k_temp_marker);
  if (at == std::string_view::npos || at < 2) {
    return 0;
  }
  std::string_view ids = core.substr(at + k_temp_marker.size());
  std::size_t dash = ids.find('-');
  long pid = 0;
  unsigned long n = 0;
  if (dash == std::string_view::npos ||
      std::from_chars(ids.data(), ids.data() + dash, pid).ptr != ids.data() + dash ||
      std::from_chars(ids.data() + dash + 1, ids.data() + ids.size(), n).ptr != ids.data() + ids.size() || pid <= 0) {
    return 0;
  }
  return static_cast<pid_t>(pid);
}

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// Removes `name` in `dir_fd` when it is a stale temporary: a regular file
// nobody holds locked, written by a process that no longer exists.
bool remove_if_stale(int dir_fd, const char* name) {
  pid_t owner = temp_owner(name);
  if (owner == 0 || process_alive(owner)) {
    return false;
  }
  int fd = ::openat(dir_fd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return false;
  }
  Fd guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return false;  // not ours to remove, or a live writer holds it
  }
  return ::unlinkat(dir_fd, name, 0) == 0;
}

}  // namespace

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : m_fd(std::move(other.m_fd)),
      m_temp_path(std::move(other.m_temp_path)),
      m_final_path(std::move(other.m_final_path)),
      m_committed(std::exchange(other.m_committed, true)) {
  other.m_temp_path.clear();
}

Result<std::size_t> remove_stale_temporaries(const std::string& dir) {
  Fd dir_fd = UTSUSHI_TRY(open_fd(dir, O_RDONLY | O_DIRECTORY));
  int listing_fd = ::dup(dir_fd.get());
  DIR* d = listing_fd < 0 ? nullptr : ::fdopendir(listing_fd);
  if (d == nullptr) {
    int err = errno;
    if (listing_fd >= 0) {
      ::close(listing_fd);
    }
    return fail_errno(err, "cannot list '" + dir + "'");
  }
  std::size_t removed = 0;
  while (const dirent* e = ::readdir(d)) {
    removed += remove_if_stale(dir_fd.get(), e->d_name) ? 1 : 0;
  }
  ::closedir(d);
  return removed;
}

Result<AtomicFile> AtomicFile::create(const std::string& final_path) {
  if (final_path.empty()) {
    return fail(Errc::invalid_argument, "empty output file name");
  }
  std::filesystem::path p(final_path);
  (void)remove_stale_temporaries(parent_dir(final_path));  // best effort: never blocks an output
  for (int attempt = 0; attempt < k_max_create_attempts; ++attempt) {
    std::string temp = (p.parent_path() / fmt::format(".{}{}{}-{}{}", p.filename().string(), k_temp_marker, ::getpid(),
                                                      g_temp_counter++, k_temp_suffix))
                           .string();
    auto fd = open_fd(temp, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (!fd && fd.error().sys_errno() == EEXIST) {
      continue;  // left by an earlier process with our PID: take another name
    }
    if (!fd) {
      return std::unexpected(std::move(fd).error().with_context("cannot create output '" + final_path + "'"));
    }
    if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::unlink(temp.c_str());
      return fail_errno(err, "cannot lock '" + temp + "'");
    }
    return AtomicFile(std::move(*fd), std::move(temp), final_path);
  }
  return fail(Errc::io_error, "cannot create a temporary file for '" + final_path + "'");
}

AtomicFile::~AtomicFile() {
  if (!m_committed && !m_temp_path.empty()) {
    ::unlink(m_temp_path.c_str());
  }
}

Result<void> AtomicFile::commit() {
  if (m_committed) {
    return fail(Errc::internal, "AtomicFile::commit called twice for '" + m_final_path + "'");
  }
  if (::fsync(m_fd.get()) != 0) {
    return fail_errno(errno, "fsync '" + m_temp_path + "'");
  }
  // Renamed while still open, so the temporary stays locked until it has its final name.
  if (::rename(m_temp_path.c_str(), m_final_path.c_str()) != 0) {
    return fail_errno(errno, "rename '" + m_temp_path + "' to '" + m_final_path + "'");
  }
  m_committed = true;
  UTSUSHI_TRY_CTX(m_fd.close(), m_final_path);  // the data is durable already (fsync above)
  auto dir = open_fd(parent_dir(m_final_path), O_RDONLY | O_DIRECTORY);
  if (dir) {
    ::fsync(dir->get());  // best effort: the rename is already visible
  }
  return {};
}

Result<void> commit_rename(const std::string& from, const std::string& to) {
  {
    Fd f = UTSUSHI_TRY(open_fd(from, O_RDONLY));
    if (::fsync(f.get()) != 0) {
      return fail_errno(errno, "fsync '" + from + "'");
    }
  }
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return fail_errno(errno, "rename '" + from + "' to '" + to + "'");
  }
  for (const std::string& d : {parent_dir(to), parent_dir(from)}) {
    auto dir = UTSUSHI_TRY(open_fd(d, O_RDONLY | O_DIRECTORY));
    if (::fsync(dir.get()) != 0) {
      return fail_errno(errno, "fsync directory '" + d + "'");
    }
    if (parent_dir(to) == parent_dir(from)) {
      break;
    }
  }
  return {};
}

}  // namespace utsushi
