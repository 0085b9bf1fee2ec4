#include "utsushi/clone/staging.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <atomic>
#include <filesystem>

#include "utsushi/common/log.h"

namespace utsushi::clone {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view k_run_prefix = "run-";

// Removes run directories whose lock nobody holds.
void remove_stale_runs(const std::string& work_dir) {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(work_dir, ec)) {
    std::string name = e.path().filename().string();
    if (!name.starts_with(k_run_prefix) || !e.is_directory(ec)) {
      continue;
    }
    std::string lock_path = (e.path() / "lock").string();
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) {
      continue;
    }
    Fd lock(fd);
    // No lock file: a run killed between mkdir and creating it (or a stray
    // directory); its lock-less state lasts an instant in a live run, so only
    // directories older than a minute are taken for stale.
    bool stale = lock ? ::flock(lock.get(), LOCK_EX | LOCK_NB) == 0
                      : fs::last_write_time(e.path(), ec) < fs::file_time_type::clock::now() - std::chrono::minutes(1);
    if (stale) {
      UTSUSHI_LOG_INFO("removing {}, left by a run that was killed", e.path().string());
      fs::remove_all(e.path(), ec);
    }
  }
}

}  // namespace

Result<StagingDir> StagingDir::create(const std::string& work_dir) {
  std::error_code ec;
  fs::create_directories(work_dir, ec);
  if (ec) {
    return fail(Errc::io_error, fmt::format("creating the work directory {}: {}", work_dir, ec.message()));
  }
  fs::permissions(work_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  remove_stale_runs(work_dir);
  static std::atomic<unsigned> counter{0};
  std::string path = fmt::format("{}/{}{}-{}", work_dir, k_run_prefix, ::getpid(), counter++);
  if (::mkdir(path.c_str(), 0700) != 0) {
    return fail_errno(errno, "creating " + path);
  }
  auto lock = open_fd(path + "/lock", O_RDWR | O_CREAT, 0600);
  if (!lock || ::flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
    fs::remove_all(path, ec);
    return lock ? fail_errno(errno, "locking " + path) : std::unexpected(std::move(lock).error());
  }
  return StagingDir(path, std::move(*lock));
}

StagingDir::StagingDir(StagingDir&& other) noexcept
    : m_path(std::exchange(other.m_path, {})), m_lock(std::move(other.m_lock)) {}

StagingDir::~StagingDir() {
  if (!m_path.empty()) {
    std::error_code ec;
    fs::remove_all(m_path, ec);
    if (ec) {
      UTSUSHI_LOG_WARN("removing {}: {}", m_path, ec.message());
    }
  }
}

}  // namespace utsushi::clone
