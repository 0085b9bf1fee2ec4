#pragma once
// Helpers for the p2v unit tests: run a shell command, build small disks and
// filesystems in temporary files with the standard tools (mkfs.*, sfdisk,
// mtools, ntfscp, debugfs), and capture them through the library.
#include <cstdlib>
#include <string>

#include "utsushi/p2v/capture.h"

namespace utsushi::p2v::test {

// Runs `cmd` through /bin/sh with output discarded; returns the exit status.
inline int sh(const std::string& cmd) {
  int rc = std::system(("(" + cmd + ") >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
inline bool have(const std::string& tool) { return sh("command -v " + tool) == 0; }

// The plan of a disk image file.
inline Result<DiskPlan> plan_file(const std::string& path) {
  auto dev = UTSUSHI_TRY(open_source(path));
  return plan_disk(*dev, path);
}

// Captures `path` to a raw image `out` and returns the result.
inline Result<CaptureResult> capture_raw(const std::string& path, const std::string& out, bool verify = true) {
  CaptureOptions o;
  o.image.format = OutputFormat::raw;
  o.verify = verify;
  return capture_disk(path, out, o);
}

}  // namespace utsushi::p2v::test
