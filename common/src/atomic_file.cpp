#include "utsushi/common/atomic_file.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

namespace utsushi {
namespace {

std::string parent_dir(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : m_fd(std::move(other.m_fd)),
      m_temp_path(std::move(other.m_temp_path)),
      m_final_path(std::move(other.m_final_path)),
      m_committed(std::exchange(other.m_committed, true)) {
  other.m_temp_path.clear();
}

Result<AtomicFile> AtomicFile::create(const std::string& final_path) {
  if (final_path.empty()) {
    return fail(Errc::invalid_argument, "empty output file name");
  }
  std::filesystem::path p(final_path);
  std::string temp = (p.parent_path() / fmt::format(".{}.utsushi-{}.tmp", p.filename().string(), ::getpid())).string();
  auto fd = open_fd(temp, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (!fd) {
    return std::unexpected(std::move(fd).error().with_context("cannot create output '" + final_path + "'"));
  }
  return AtomicFile(std::move(*fd), std::move(temp), final_path);
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
  UTSUSHI_TRY_CTX(m_fd.close(), m_temp_path);
  if (::rename(m_temp_path.c_str(), m_final_path.c_str()) != 0) {
    return fail_errno(errno, "rename '" + m_temp_path + "' to '" + m_final_path + "'");
  }
  m_committed = true;
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
