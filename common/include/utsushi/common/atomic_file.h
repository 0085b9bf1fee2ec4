#pragma once
// AtomicFile: an output file written under a temporary name in the same
// directory and renamed over the final name only by an explicit commit().
// The destructor never commits: a run that fails, is cancelled or is killed
// never leaves a file under the final name that looks complete.
//
// Temporaries are named ".NAME.utsushi-PID-N.tmp" and held under an
// exclusive flock(2) while they exist. After kill -9 (or power loss) one may
// remain; every AtomicFile::create in that directory removes such stale
// temporaries: those whose lock is free and whose process is gone (both:
// the lock cannot be fooled by a reused PID, the PID covers the instant
// between creating a temporary and locking it).

#include <string>

#include "utsushi/common/error.h"
#include "utsushi/common/fd.h"

namespace utsushi {

class AtomicFile {
 public:
  // Creates the temporary file next to `final_path` (mode 0644), after removing
  // the directory's stale temporaries. Fails when the directory does not
  // exist or is not writable.
  [[nodiscard]] static Result<AtomicFile> create(const std::string& final_path);

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Removes the temporary file if commit() did not succeed.
  ~AtomicFile();

  int fd() const noexcept { return m_fd.get(); }
  const std::string& temp_path() const noexcept { return m_temp_path; }
  const std::string& final_path() const noexcept { return m_final_path; }

  // fsync the data, rename to the final name (replacing any file there), fsync
  // the directory. After success the object no longer owns a temporary.
  [[nodiscard]] Result<void> commit();

 private:
  AtomicFile(Fd fd, std::string temp_path, std::string final_path)
      : m_fd(std::move(fd)), m_temp_path(std::move(temp_path)), m_final_path(std::move(final_path)) {}

  Fd m_fd;
  std::string m_temp_path;
  std::string m_final_path;
  bool m_committed = false;
};

// Removes the stale AtomicFile temporaries in `dir` (see above) and returns
// how many it removed. Temporaries of live writers are never touched.
[[nodiscard]] Result<std::size_t> remove_stale_temporaries(const std::string& dir);

// For a file already complete under a temporary name elsewhere on the same
// filesystem (e.g. p2v serve's received data): fsync `from`, rename it over
// `to`, fsync the directory of `to` (and of `from` when different). Unlike
// AtomicFile nothing is removed on failure: `from` stays for a retry.
[[nodiscard]] Result<void> commit_rename(const std::string& from, const std::string& to);

}  // namespace utsushi
