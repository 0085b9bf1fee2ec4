#pragma once
// Helpers for imagefmt unit tests that use qemu-img as the oracle (it runs on
// every machine the suite runs on: tests/e2e needs it too).

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "utsushi/common/process.h"
#include "utsushi/imagefmt/block_device.h"

namespace utsushi::test {

// Runs a shell command; 0 on success, else its exit status (128 + signal).
// A failure's output is attached to the test report.
inline int sh(const std::string& cmd) {
  auto r = run_process({"sh", "-c", cmd});
  if (!r) {
    FAIL_CHECK("cannot run: " << cmd << ": " << r.error().message());
    return -1;
  }
  if (!r->ok()) {
    WARN("command failed (exit " << r->exit_code << "): " << cmd << "\n" << r->output);
  }
  return r->ok() ? 0 : (r->exit_code ? r->exit_code : 128 + r->term_signal);
}

// `qemu-img check --output=json IMAGE`: its exit status and its report.
struct QemuCheck {
  int exit_code = -1;
  nlohmann::json report;
};
inline QemuCheck qemu_img_check(const std::string& image) {
  auto r = run_process({"sh", "-c", "qemu-img check --output=json '" + image + "' 2>/dev/null"});
  REQUIRE(r);
  QemuCheck out{r->exit_code, nlohmann::json::parse(r->output, nullptr, false)};
  REQUIRE_FALSE(out.report.is_discarded());
  return out;
}

// Every byte of a device.
inline std::vector<std::uint8_t> read_all(imagefmt::BlockDevice& d) {
  std::vector<std::uint8_t> v(static_cast<std::size_t>(d.size()));
  auto r = d.pread(v, 0);
  if (!r) {
    FAIL(d.description() << ": " << r.error().message());
  }
  return v;
}

}  // namespace utsushi::test
