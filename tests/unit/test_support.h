#pragma once
// Helpers shared by unit tests: a temporary directory removed on scope exit,
// deterministic test data, and a loop device attached to a file (root only).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace utsushi::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return m_path; }
  std::string file(const std::string& name) const { return m_path + "/" + name; }

 private:
  std::string m_path;
};

// Bytes derived from (seed, index): never all zero in any 512-byte block.
std::vector<std::uint8_t> pattern(std::size_t size, std::uint32_t seed);

// Creates a sparse file of `size` bytes.
void make_sparse_file(const std::string& path, std::uint64_t size);
void write_at(const std::string& path, std::uint64_t offset, const std::vector<std::uint8_t>& data);
std::vector<std::uint8_t> read_at(const std::string& path, std::uint64_t offset, std::size_t size);

bool is_root();

// Runs `cmd` through /bin/sh with its output discarded; returns the exit status.
int sh(const std::string& cmd);
// Whether `tool` is on PATH.
bool have(const std::string& tool);
// Runs `check` in a forked child and returns its result (false when the
// child died). For what changes process-wide state for good, such as a
// cancellation request (common/cancel.h: the product has no way to take one
// back, and needs none).
bool in_child_process(const std::function<bool()>& check);
// Stops the daemon whose pid `pidfile` holds (qemu-nbd --fork --pid-file):
// SIGTERM, then waits up to 10 s for it to be gone, so that it writes nothing
// into a TempDir being removed; removes the pidfile. Nothing when it holds no pid.
void stop_daemon(const std::string& pidfile);

// A loop device over a file, detached on destruction. Empty when loop devices
// cannot be used here (not root, no /dev/loop-control); `why_not` says why.
class LoopDevice {
 public:
  static std::optional<LoopDevice> attach(const std::string& file, std::string& why_not, bool read_only = false);
  LoopDevice(LoopDevice&& other) noexcept;
  ~LoopDevice();
  const std::string& path() const { return m_path; }

 private:
  explicit LoopDevice(std::string path) : m_path(std::move(path)) {}
  std::string m_path;
};

}  // namespace utsushi::test
