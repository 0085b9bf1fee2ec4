#include "utsushi/common/private_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <utility>

namespace utsushi {

Result<PrivateDir> PrivateDir::create(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    return fail_errno(errno, "creating a private directory " + templ);
  }
  return PrivateDir(std::move(templ));
}

PrivateDir::PrivateDir(PrivateDir&& o) noexcept : m_path(std::exchange(o.m_path, {})) {}

PrivateDir& PrivateDir::operator=(PrivateDir&& o) noexcept {
  if (this != &o) {
    remove();
    m_path = std::exchange(o.m_path, {});
  }
  return *this;
}

void PrivateDir::remove() noexcept {
  if (!m_path.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
    m_path.clear();
  }
}

}  // namespace utsushi
