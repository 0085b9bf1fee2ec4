#include <catch2/catch.hpp>

#include "utsushi/livemig/disk_precopy.h"

using namespace utsushi::livemig;
using namespace std::chrono;

TEST_CASE("livemig::memory_lead is QEMU's first pass over the guest's RAM", "[livemig][precopy]") {
  CHECK(memory_lead(0) == milliseconds(0));
  CHECK(memory_lead(512ull << 20) == milliseconds(16000));
  CHECK(memory_lead(8ull << 30) == milliseconds(256000));
}

TEST_CASE("livemig::bulk_time_left extrapolates the recent rate at which data reached the link",
          "[livemig][precopy]") {
  // Not measured long enough, or nothing sent lately: no estimate.
  CHECK_FALSE(bulk_time_left(100 << 20, 10 << 20, milliseconds(499)));
  CHECK_FALSE(bulk_time_left(100 << 20, 0, seconds(3)));
  // 25 MiB in the last second: 75 MiB left take 3 s.
  CHECK(bulk_time_left(75 << 20, 25 << 20, seconds(1)) == milliseconds(3000));
  CHECK(bulk_time_left(50 << 20, 50 << 20, milliseconds(500)) == milliseconds(500));
  // Nothing left (or a pass with no data): nothing left, measured or not.
  CHECK(bulk_time_left(0, 0, milliseconds(0)) == milliseconds(0));
  // A rate of one byte in a long time: a huge estimate, not an overflow.
  CHECK(bulk_time_left(1ull << 60, 1, seconds(1000)) > hours(1000));
}
