#pragma once
// PrivateDir: a directory only its owner can enter (mkdtemp(3): mode 0700),
// made under $TMPDIR (else /tmp) and removed with everything in it when the
// PrivateDir is destroyed. For short-lived files and UNIX sockets that no
// other user may see or replace. Not for a mount point: removal is recursive.
// After kill -9 the directory remains (named PREFIX-XXXXXX, empty or holding
// what the process left); nothing in it outlives its use.

#include <string>

#include "utsushi/common/error.h"

namespace utsushi {

class PrivateDir {
 public:
  // `prefix` names the directory (e.g. "utsushi-keys"). The error names the
  // path that could not be made.
  [[nodiscard]] static Result<PrivateDir> create(const std::string& prefix);

  PrivateDir() = default;  // holds nothing
  PrivateDir(PrivateDir&& o) noexcept;
  PrivateDir& operator=(PrivateDir&& o) noexcept;
  PrivateDir(const PrivateDir&) = delete;
  PrivateDir& operator=(const PrivateDir&) = delete;
  ~PrivateDir() { remove(); }

  const std::string& path() const noexcept { return m_path; }
  // Removes the directory now (idempotent; errors ignored).
  void remove() noexcept;

 private:
  explicit PrivateDir(std::string path) : m_path(std::move(path)) {}
  std::string m_path;
};

}  // namespace utsushi
