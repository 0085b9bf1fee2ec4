#include <catch2/catch.hpp>

#include "utsushi/common/progress.h"

using namespace utsushi;

TEST_CASE("progress: byte and duration formatting", "[progress]") {
  CHECK(format_bytes(0) == "0 B");
  CHECK(format_bytes(1023) == "1023 B");
  CHECK(format_bytes(1024) == "1.0 KiB");
  CHECK(format_bytes(1536ull << 20) == "1.5 GiB");
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(125) == "2:05");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(-1) == "--:--");
}

TEST_CASE("progress: mode choice", "[progress]") {
  CHECK(choose_progress_mode(true, false) == ProgressMode::json);
  CHECK(choose_progress_mode(true, true) == ProgressMode::json);
  CHECK(choose_progress_mode(false, true) == ProgressMode::none);
}

TEST_CASE("progress: silent reporter accepts updates from many threads", "[progress]") {
  ProgressReporter r(ProgressMode::none, "x");
  auto cb = r.callback();
  for (int i = 0; i <= 100; ++i) {
    cb(static_cast<std::uint64_t>(i), 100);
  }
  r.finish();
  r.finish();  // idempotent
}
