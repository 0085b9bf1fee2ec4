#pragma once
// Helpers for the p2v unit tests: capture small disks through the library.
#include <string>

#include "test_support.h"
#include "utsushi/p2v/capture.h"

namespace utsushi::p2v::test {

using utsushi::test::have;
using utsushi::test::sh;

// Captures `path` to a raw image `out` and returns the result.
inline Result<CaptureResult> capture_raw(const std::string& path, const std::string& out, bool verify = true) {
  CaptureOptions o;
  o.image.format = OutputFormat::raw;
  o.verify = verify;
  return capture_disk(path, out, o);
}

}  // namespace utsushi::p2v::test
