#include <catch2/catch.hpp>

#include "memory_driver.h"
#include "test_support.h"
#include "utsushi/common/cancel.h"
#include "utsushi/imagefmt/copy.h"
#include "utsushi/imagefmt/raw.h"

using namespace utsushi;
using namespace utsushi::imagefmt;

namespace {

Capabilities caps(bool write, bool extents) {
  Capabilities c;
  c.can_write = write;
  c.can_extents = extents;
  return c;
}

}  // namespace

TEST_CASE("copy: data is copied, zero chunks skipped, progress reaches the total", "[copy]") {
  const std::uint64_t size = 16 << 20;
  auto src_driver = std::make_unique<test::MemoryDriver>(size, caps(false, false));
  auto data = test::pattern(1 << 20, 5);
  std::copy(data.begin(), data.end(), src_driver->data().begin() + (3 << 20));
  std::copy(data.begin(), data.end(), src_driver->data().begin() + (10 << 20) + 7);
  auto expected = src_driver->data();
  BlockDevice src(std::move(src_driver));
  auto dst_driver = std::make_unique<test::MemoryDriver>(size, caps(true, false));
  auto* dst_raw = dst_driver.get();
  BlockDevice dst(std::move(dst_driver));
  std::uint64_t last_done = 0, last_total = 0;
  CopyOptions o;
  o.chunk_size = 1 << 20;
  o.threads = 3;
  o.progress = [&](std::uint64_t d, std::uint64_t t) {
    last_done = std::max(last_done, d);
    last_total = t;
  };
  auto stats = copy_device(src, dst, o);
  REQUIRE(stats);
  CHECK(dst_raw->data() == expected);
  CHECK(stats->bytes_read == size);              // no extents: everything read
  CHECK(stats->bytes_written == (3u << 20));     // 1 chunk + 2 chunks straddled
  CHECK(stats->bytes_zero == size - (3u << 20));
  CHECK(last_done == size);
  CHECK(last_total == size);
}

TEST_CASE("copy: holes reported by extents are not read", "[copy]") {
  const std::uint64_t size = 8 << 20;
  auto src_driver = std::make_unique<test::MemoryDriver>(size, caps(false, true));
  auto* src_raw = src_driver.get();
  auto data = test::pattern(8192, 6);
  std::copy(data.begin(), data.end(), src_driver->data().begin() + 4096);
  BlockDevice src(std::move(src_driver));
  auto dst_driver = std::make_unique<test::MemoryDriver>(size, caps(true, false));
  auto* dst_raw = dst_driver.get();
  BlockDevice dst(std::move(dst_driver));
  auto stats = copy_device(src, dst);
  REQUIRE(stats);
  CHECK(stats->bytes_read == 8192);
  CHECK(dst_raw->data() == src_raw->data());
}

TEST_CASE("copy: a target that is not zeroed gets zeros written", "[copy]") {
  const std::uint64_t size = 4 << 20;
  BlockDevice src(std::make_unique<test::MemoryDriver>(size, caps(false, true)));
  auto dst_driver = std::make_unique<test::MemoryDriver>(size, caps(true, false));
  auto* dst_raw = dst_driver.get();
  dst_raw->data() = test::pattern(size, 8);
  BlockDevice dst(std::move(dst_driver));
  CopyOptions o;
  o.target_is_zeroed = false;
  REQUIRE(copy_device(src, dst, o));
  CHECK(std::all_of(dst_raw->data().begin(), dst_raw->data().end(), [](auto c) { return c == 0; }));
}

TEST_CASE("copy: size mismatch, read errors and cancellation stop the copy", "[copy]") {
  BlockDevice small(std::make_unique<test::MemoryDriver>(4096, caps(false, false)));
  BlockDevice big(std::make_unique<test::MemoryDriver>(8192, caps(true, false)));
  auto mismatch = copy_device(small, big);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.error().code() == Errc::invalid_argument);

  auto failing = std::make_unique<test::MemoryDriver>(8 << 20, caps(false, false));
  failing->fail_call(3);
  BlockDevice src(std::move(failing));
  BlockDevice dst(std::make_unique<test::MemoryDriver>(8 << 20, caps(true, false)));
  CopyOptions o;
  o.chunk_size = 1 << 20;
  auto io = copy_device(src, dst, o);
  REQUIRE_FALSE(io);
  CHECK(io.error().code() == Errc::io_error);

  CHECK(test::in_child_process([&] {
    request_cancel();
    auto cancelled = copy_device(src, dst, o);
    return !cancelled && cancelled.error().code() == Errc::cancelled;
  }));
}
