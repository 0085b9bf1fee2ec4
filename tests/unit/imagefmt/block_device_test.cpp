#include <catch2/catch.hpp>
#include <cstdint>

#include "memory_driver.h"
#include "test_support.h"
#include "utsushi/imagefmt/block_device.h"

using namespace utsushi;
using namespace utsushi::imagefmt;
using test::MemoryDriver;

namespace {

struct Fixture {
  MemoryDriver* driver;
  std::unique_ptr<BlockDevice> device;
};

Fixture make(std::uint64_t size, Capabilities caps) {
  auto d = std::make_unique<MemoryDriver>(size, caps);
  MemoryDriver* raw = d.get();
  return {raw, std::make_unique<BlockDevice>(std::move(d))};
}

Capabilities writable() {
  Capabilities c;
  c.can_write = true;
  return c;
}

}  // namespace

TEST_CASE("block_device: out-of-range and overflowing requests never reach the driver", "[block_device]") {
  auto f = make(1 << 20, writable());
  std::vector<std::uint8_t> buf(16);
  auto r = f.device->pread(buf, (1 << 20) - 8);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::out_of_range);
  CHECK_FALSE(f.device->pwrite(buf, UINT64_MAX - 4));
  CHECK_FALSE(f.device->zero(UINT64_MAX, 2));
  CHECK_FALSE(f.device->extents(1, UINT64_MAX));
  CHECK(f.driver->calls().empty());
  CHECK(f.device->pread(buf, (1 << 20) - 16));  // exactly at the end is fine
}

TEST_CASE("block_device: writes to a read-only device are refused", "[block_device]") {
  auto f = make(4096, Capabilities{});
  std::vector<std::uint8_t> buf(16, 1);
  auto r = f.device->pwrite(buf, 0);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::permission_denied);
  CHECK_FALSE(f.device->zero(0, 16));
  CHECK(f.driver->calls().empty());
}

TEST_CASE("block_device: requests are split to max_transfer", "[block_device]") {
  Capabilities c = writable();
  c.max_transfer = 4096;
  auto f = make(1 << 16, c);
  std::vector<std::uint8_t> buf(10000, 7);
  REQUIRE(f.device->pwrite(buf, 100));
  for (const auto& call : f.driver->calls()) {
    CHECK(call.length <= 4096);
  }
  CHECK(f.driver->calls().size() == 3);
  std::vector<std::uint8_t> back(10000);
  REQUIRE(f.device->pread(back, 100));
  CHECK(back == buf);
}

TEST_CASE("block_device: unaligned I/O becomes aligned driver requests (RMW)", "[block_device]") {
  Capabilities c = writable();
  c.request_alignment = 512;
  auto f = make(1 << 16, c);
  auto base = test::pattern(1 << 16, 1);
  f.driver->data() = base;
  auto patch = test::pattern(1000, 2);
  REQUIRE(f.device->pwrite(patch, 700));
  for (const auto& call : f.driver->calls()) {
    CHECK(call.offset % 512 == 0);
    CHECK(call.length % 512 == 0);
  }
  // Bytes around the patch are preserved; the patch is in place.
  std::copy(patch.begin(), patch.end(), base.begin() + 700);
  CHECK(f.driver->data() == base);
  std::vector<std::uint8_t> back(333);
  REQUIRE(f.device->pread(back, 1001));
  CHECK(std::equal(back.begin(), back.end(), base.begin() + 1001));
}

TEST_CASE("block_device: zero is emulated with writes when the driver cannot zero", "[block_device]") {
  auto f = make(1 << 16, writable());
  f.driver->data() = test::pattern(1 << 16, 3);
  REQUIRE(f.device->zero(1000, 5000));
  for (const auto& call : f.driver->calls()) {
    CHECK(call.op == 'w');
  }
  for (std::size_t i = 1000; i < 6000; ++i) {
    REQUIRE(f.driver->data()[i] == 0);
  }
  CHECK(f.driver->data()[999] != 0);
  CHECK(f.driver->data()[6000] != 0);
}

TEST_CASE("block_device: native zero is used when offered", "[block_device]") {
  Capabilities c = writable();
  c.can_zero = true;
  auto f = make(1 << 16, c);
  REQUIRE(f.device->zero(0, 1 << 16));
  REQUIRE(f.driver->calls().size() == 1);
  CHECK(f.driver->calls()[0].op == 'z');
}

TEST_CASE("block_device: discard without driver support is a no-op", "[block_device]") {
  auto f = make(1 << 16, writable());
  REQUIRE(f.device->discard(0, 4096));
  CHECK(f.driver->calls().empty());
}

TEST_CASE("block_device: no extents support means all data", "[block_device]") {
  auto f = make(1 << 16, writable());
  auto e = f.device->extents();
  REQUIRE(e);
  REQUIRE(e->size() == 1);
  CHECK((*e)[0] == Extent{0, 1 << 16, ExtentType::data});
}

TEST_CASE("block_device: extents are clipped, merged and re-asked", "[block_device]") {
  Capabilities c = writable();
  c.can_extents = true;
  auto f = make(1 << 16, c);
  f.driver->set_extent_limit(2);
  std::fill_n(f.driver->data().begin() + 8192, 8192, 1);
  auto e = f.device->extents(100, 30000);
  REQUIRE(e);
  std::vector<Extent> want = {{100, 8092, ExtentType::hole},
                              {8192, 8192, ExtentType::data},
                              {16384, 30100 - 16384, ExtentType::hole}};
  CHECK(*e == want);
}

TEST_CASE("block_device: driver errors propagate with their message", "[block_device]") {
  auto f = make(1 << 16, writable());
  f.driver->fail_call(1);
  std::vector<std::uint8_t> buf(10);
  auto r = f.device->pread(buf, 0);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::io_error);
  CHECK(r.error().message().find("injected") != std::string::npos);
}
