// disk_hash.h: the per-disk write hash is the same whatever the order of the
// writes and wherever a range is cut on a granule boundary; a zero range
// hashes as data of zeros; content, offset and repetition all change it.
#include "utsushi/livemig/disk_hash.h"

#include <catch2/catch.hpp>
#include <vector>

#include "test_support.h"

using namespace utsushi;
using namespace utsushi::livemig;

namespace {

constexpr std::uint64_t G = k_disk_hash_granule;

std::span<const std::uint8_t> part(const std::vector<std::uint8_t>& v, std::size_t at, std::size_t n) {
  return std::span(v).subspan(at, n);
}

}  // namespace

TEST_CASE("livemig DiskWriteHash: order and granule cuts do not matter", "[livemig][disk_hash]") {
  auto a = test::pattern(3 * G + 512, 1);
  auto b = test::pattern(4096, 2);

  DiskWriteHash forward;
  forward.add_data(G / 2, a);
  forward.add_zero(10 * G, 5 * G + 7);
  forward.add_data(20 * G + 100, b);

  DiskWriteHash backward;
  backward.add_data(20 * G + 100, b);
  backward.add_zero(10 * G, 5 * G + 7);
  backward.add_data(G / 2, a);
  CHECK(forward == backward);

  DiskWriteHash cut;  // `a` cut at the granule boundaries 1G and 3G, the zero range at 12G
  cut.add_zero(12 * G, 3 * G + 7);
  cut.add_data(G, part(a, G / 2, 2 * G));
  cut.add_data(20 * G + 100, b);
  cut.add_data(3 * G, part(a, G / 2 + 2 * G, a.size() - G / 2 - 2 * G));
  cut.add_zero(10 * G, 2 * G);
  cut.add_data(G / 2, part(a, 0, G / 2));
  CHECK(cut == forward);
  CHECK(cut.hex() == forward.hex());
  CHECK(forward.hex().size() == 32);
}

TEST_CASE("livemig DiskWriteHash: a zero range hashes as data of zeros", "[livemig][disk_hash]") {
  std::vector<std::uint8_t> zeros(2 * G + 300, 0);
  DiskWriteHash as_zero;
  as_zero.add_zero(G - 300, zeros.size());
  DiskWriteHash as_data;
  as_data.add_data(G - 300, zeros);
  CHECK(as_zero == as_data);
}

TEST_CASE("livemig DiskWriteHash: content, offset, length and repetition change it", "[livemig][disk_hash]") {
  auto a = test::pattern(8192, 5);
  DiskWriteHash base;
  base.add_data(0, a);
  base.add_zero(G, G);

  auto flipped = a;
  flipped[4000] ^= 1;
  DiskWriteHash content;
  content.add_data(0, flipped);
  content.add_zero(G, G);
  CHECK(content != base);

  DiskWriteHash moved;
  moved.add_data(512, a);
  moved.add_zero(G, G);
  CHECK(moved != base);

  DiskWriteHash shorter;
  shorter.add_data(0, a);
  shorter.add_zero(G, G - 512);
  CHECK(shorter != base);

  DiskWriteHash twice = base;
  twice.add_data(0, a);
  CHECK(twice != base);

  CHECK(DiskWriteHash() != base);
  CHECK(DiskWriteHash().hex() == std::string(32, '0'));
}

TEST_CASE("livemig DiskWriteHash: add(batch) adds its ranges with their bytes", "[livemig][disk_hash]") {
  auto a = test::pattern(G + 10, 9);
  auto b = test::pattern(100, 10);
  DiskBatch batch{0,
                  {{0, a.size(), DiskRangeKind::data}, {2 * G, 3 * G, DiskRangeKind::zero},
                   {7 * G, b.size(), DiskRangeKind::data}},
                  {}};
  batch.data = a;
  batch.data.insert(batch.data.end(), b.begin(), b.end());
  DiskWriteHash whole;
  whole.add(batch);
  DiskWriteHash each;
  each.add_data(7 * G, b);
  each.add_zero(2 * G, 3 * G);
  each.add_data(0, a);
  CHECK(whole == each);
}
