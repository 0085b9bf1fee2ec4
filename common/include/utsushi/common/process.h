#pragma once
// Running a helper program (qemu, qemu-img, mkfs...) with its output captured,
// a timeout, and an optional marker that ends it early. The child runs in its
// own process group, which is killed (SIGKILL) on timeout, on marker, and when
// the caller is cancelled, so no helper outlives the call.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi {

struct ProcessOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  // When set, the child is killed as soon as its combined output contains this.
  std::optional<std::string> stop_marker;
  // Output beyond this many bytes is dropped (the tail is kept).
  std::size_t max_output = 1 << 20;
};

struct ProcessResult {
  int exit_code = -1;     // valid when term_signal == 0
  int term_signal = 0;    // the signal that ended the child, 0 if it exited
  bool timed_out = false;
  bool marker_seen = false;
  std::string output;     // stdout and stderr, interleaved
  bool ok() const noexcept { return term_signal == 0 && exit_code == 0; }
};

// Runs argv[0] (looked up in PATH) with stdin from /dev/null. Fails only when
// the program cannot be started or waited for; a non-zero exit is a result.
[[nodiscard]] Result<ProcessResult> run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// Whether `program` is found in PATH (or is an executable path).
bool program_exists(const std::string& program);

}  // namespace utsushi
