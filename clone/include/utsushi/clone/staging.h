#pragma once
// The local directory where a run prepares its clones' disks before they go
// to the hosts: WORK/run-PID-N/, held under an exclusive flock(2) on its
// `lock` file while the run lives and removed with everything in it when the
// run ends, whatever way it ends. A run killed with SIGKILL leaves its
// directory behind: the next StagingDir::create in the same WORK removes
// every run directory whose lock is free (its run is gone).

#include <string>

#include "utsushi/common/error.h"
#include "utsushi/common/fd.h"

namespace utsushi::clone {

class StagingDir {
 public:
  // Creates WORK (mode 0700) if needed, removes stale run directories in it,
  // and makes this run's directory.
  [[nodiscard]] static Result<StagingDir> create(const std::string& work_dir);

  StagingDir(StagingDir&& other) noexcept;
  StagingDir& operator=(StagingDir&&) = delete;
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  ~StagingDir();  // removes the directory and everything in it

  const std::string& path() const noexcept { return m_path; }
  std::string file(const std::string& name) const { return m_path + "/" + name; }

 private:
  StagingDir(std::string path, Fd lock) : m_path(std::move(path)), m_lock(std::move(lock)) {}
  std::string m_path;
  Fd m_lock;
};

}  // namespace utsushi::clone
