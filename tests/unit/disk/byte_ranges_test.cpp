#include <catch2/catch.hpp>

#include "test_support.h"
#include "utsushi/imagefmt/raw.h"
#include "utsushi/disk/byte_ranges.h"
#include "utsushi/disk/used_blocks_filter.h"

using namespace utsushi;
using utsushi::disk::ByteRanges;
using utsushi::disk::ByteRange;
using utsushi::disk::make_used_view;

TEST_CASE("disk::ByteRanges merges, clips and answers contains", "[disk]") {
  ByteRanges r;
  r.add(100, 50);
  r.add(0, 10);
  r.add(140, 20);  // overlaps
  r.add(160, 5);   // adjacent
  r.add(500, 0);   // empty: ignored
  REQUIRE(r.ranges() == std::vector<ByteRange>{{0, 10}, {100, 65}});
  CHECK(r.total() == 75);
  CHECK(r.contains(100, 65));
  CHECK_FALSE(r.contains(99, 2));
  CHECK_FALSE(r.contains(10, 1));
  CHECK(r.clipped(120).ranges() == std::vector<ByteRange>{{0, 10}, {100, 20}});
}

TEST_CASE("disk::UsedBlocksFilter reports holes and reads zeros outside used ranges", "[disk]") {
  test::TempDir dir;
  std::string path = dir.file("disk.raw");
  test::make_sparse_file(path, 1 << 20);
  auto data = test::pattern(1 << 20, 7);
  test::write_at(path, 0, data);
  auto below = imagefmt::BlockDevice(imagefmt::open_raw(path).value());
  ByteRanges used;
  used.add(4096, 8192);
  used.add(65536, 100);
  auto view = make_used_view(below, used);

  auto ext = view->extents().value();
  REQUIRE(ext.size() == 5);
  CHECK(ext[0].type == imagefmt::ExtentType::hole);
  CHECK((ext[1].offset == 4096 && ext[1].length == 8192 && ext[1].type == imagefmt::ExtentType::data));
  CHECK((ext[3].offset == 65536 && ext[3].length == 100));
  CHECK(ext[4].offset + ext[4].length == (1u << 20));

  std::vector<std::uint8_t> buf(70000);
  REQUIRE(view->pread(buf, 0));
  for (std::size_t i = 0; i < buf.size(); ++i) {
    bool in = (i >= 4096 && i < 12288) || (i >= 65536 && i < 65636);
    if (buf[i] != (in ? data[i] : 0)) {
      FAIL("byte " << i << " wrong");
    }
  }
  CHECK_FALSE(view->pwrite(buf, 0));  // never writes to a source
}
