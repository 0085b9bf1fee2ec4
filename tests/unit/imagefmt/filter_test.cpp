#include <catch2/catch.hpp>

#include "memory_driver.h"
#include "test_support.h"
#include "utsushi/imagefmt/filter.h"

using namespace utsushi;
using namespace utsushi::imagefmt;

TEST_CASE("filter: a window maps offsets and refuses to reach outside", "[filter]") {
  Capabilities c;
  c.can_write = true;
  c.can_extents = true;
  auto driver = std::make_unique<test::MemoryDriver>(1 << 20, c);
  auto* raw = driver.get();
  BlockDevice disk(std::move(driver));
  REQUIRE_FALSE(WindowFilter::create(disk, 1 << 19, (1 << 19) + 1, "part1"));
  auto w = WindowFilter::create(disk, 65536, 131072, "part1");
  REQUIRE(w);
  BlockDevice part(std::move(*w));
  CHECK(part.size() == 131072);
  CHECK(part.description() == "part1");
  auto data = test::pattern(4096, 3);
  REQUIRE(part.pwrite(data, 8192));
  CHECK(std::equal(data.begin(), data.end(), raw->data().begin() + 65536 + 8192));
  std::vector<std::uint8_t> buf(16);
  auto beyond = part.pread(buf, 131072 - 8);
  REQUIRE_FALSE(beyond);
  CHECK(beyond.error().code() == Errc::out_of_range);
  auto e = part.extents();
  REQUIRE(e);
  std::vector<Extent> want = {{0, 8192, ExtentType::hole},
                              {8192, 4096, ExtentType::data},
                              {12288, 131072 - 12288, ExtentType::hole}};
  CHECK(*e == want);
}

TEST_CASE("filter: an owning window keeps the device below alive and checks the range first", "[filter]") {
  Capabilities c;
  auto disk = std::make_unique<BlockDevice>(std::make_unique<test::MemoryDriver>(1 << 16, c));
  auto* raw = dynamic_cast<test::MemoryDriver*>(&disk->driver());
  REQUIRE(raw != nullptr);
  auto data = test::pattern(4096, 5);
  std::copy(data.begin(), data.end(), raw->data().begin() + 8192);
  auto refused = WindowFilter::create(std::make_unique<BlockDevice>(std::make_unique<test::MemoryDriver>(4096, c)),
                                      4096, 1, "member");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Errc::out_of_range);
  auto w = WindowFilter::create(std::move(disk), 8192, 4096, "member");
  REQUIRE(w);
  BlockDevice member(std::move(*w));  // the only owner of the disk now
  std::vector<std::uint8_t> buf(4096);
  REQUIRE(member.pread(buf, 0));
  CHECK(buf == data);
}
