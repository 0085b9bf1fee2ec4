#include "test_support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <stdexcept>

#include "utsushi/common/fd.h"
#include "utsushi/common/process.h"

namespace utsushi::test {

bool in_child_process(const std::function<bool()>& check) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    bool ok = false;
    try {
      ok = check();
    } catch (...) {
    }
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "utsushi-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  m_path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(m_path, ec);
}

std::vector<std::uint8_t> pattern(std::size_t size, std::uint32_t seed) {
  std::vector<std::uint8_t> v(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    v[i] = static_cast<std::uint8_t>((x >> 16) | 1);  // odd: never zero
  }
  return v;
}

void make_sparse_file(const std::string& path, std::uint64_t size) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    throw std::runtime_error("cannot create " + path);
  }
  ::close(fd);
}

void write_at(const std::string& path, std::uint64_t offset, const std::vector<std::uint8_t>& data) {
  auto fd = open_fd(path, O_RDWR);
  if (!fd || !pwrite_full(fd->get(), data, offset, path)) {
    throw std::runtime_error("cannot write " + path);
  }
}

std::vector<std::uint8_t> read_at(const std::string& path, std::uint64_t offset, std::size_t size) {
  std::vector<std::uint8_t> v(size);
  auto fd = open_fd(path, O_RDONLY);
  if (!fd || !pread_full(fd->get(), v, offset, path)) {
    throw std::runtime_error("cannot read " + path);
  }
  return v;
}

bool is_root() { return ::geteuid() == 0; }

int sh(const std::string& cmd) {
  int rc = std::system(("(" + cmd + ") >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

bool have(const std::string& tool) { return sh("command -v " + tool) == 0; }

std::optional<LoopDevice> LoopDevice::attach(const std::string& file, std::string& why_not, bool read_only) {
  if (!is_root()) {
    why_not = "not root: loop devices need root";
    return std::nullopt;
  }
  if (::access("/dev/loop-control", R_OK | W_OK) != 0) {
    why_not = "no /dev/loop-control";
    return std::nullopt;
  }
  std::vector<std::string> argv = {"losetup", "--find", "--show"};
  if (read_only) {
    argv.push_back("--read-only");
  }
  argv.push_back(file);
  auto r = run_process(argv);
  if (!r || !r->ok()) {
    why_not = "losetup failed: " + (r ? r->output : r.error().message());
    return std::nullopt;
  }
  std::string dev = r->output.substr(0, r->output.find('\n'));
  return LoopDevice(dev);
}

LoopDevice::LoopDevice(LoopDevice&& other) noexcept : m_path(std::move(other.m_path)) { other.m_path.clear(); }

LoopDevice::~LoopDevice() {
  if (!m_path.empty()) {
    (void)run_process({"losetup", "-d", m_path});
  }
}

void stop_daemon(const std::string& pidfile) {
  pid_t pid = 0;
  {
    std::ifstream in(pidfile);
    in >> pid;
  }
  if (pid > 0 && ::kill(pid, SIGTERM) == 0) {
    for (int i = 0; i < 1000 && ::kill(pid, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::remove(pidfile.c_str());
}

}  // namespace utsushi::test
