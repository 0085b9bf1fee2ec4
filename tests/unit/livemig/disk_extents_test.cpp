// disk_extents.h: the ranges a pass sends, from block-status maps. The maps
// of the first test are what QEMU 7.2's export reported for a qcow2 overlay
// over a backing file (docs/ARCHITECTURE.md, "livemig: disks").
#include "utsushi/livemig/disk_extents.h"

#include <catch2/catch.hpp>
#include <vector>

using namespace utsushi;
using namespace utsushi::livemig;

namespace {

constexpr std::uint64_t M = 1u << 20;
constexpr std::uint64_t K = 1024;
constexpr DiskRangeKind D = DiskRangeKind::data;
constexpr DiskRangeKind Z = DiskRangeKind::zero;

}  // namespace

TEST_CASE("livemig top_image_ranges: only what the top image holds, zero or data", "[livemig][disk_extents]") {
  // Backing: 0xaa at 0..8M, 0xbb at 32M..36M. Overlay: 0x11 at 1M..2M, a
  // zero write at 40M..42M, 0x22 at 50M..50.5M.
  std::vector<NbdExtent> allocation = {{0, 8 * M, 0},        {8 * M, 24 * M, 3},    {32 * M, 4 * M, 0},
                                       {36 * M, 14 * M, 3},  {50 * M, 512 * K, 0},  {50 * M + 512 * K, 13 * M + 512 * K, 3}};
  std::vector<NbdExtent> depth = {{0, 1 * M, 2},       {1 * M, 1 * M, 1},      {2 * M, 6 * M, 2},
                                  {8 * M, 24 * M, 0},  {32 * M, 4 * M, 2},     {36 * M, 4 * M, 0},
                                  {40 * M, 2 * M, 1},  {42 * M, 8 * M, 0},     {50 * M, 512 * K, 1},
                                  {50 * M + 512 * K, 13 * M + 512 * K, 0}};
  auto r = top_image_ranges(depth, allocation);
  std::vector<DiskRange> expected = {{1 * M, 1 * M, D}, {40 * M, 2 * M, Z}, {50 * M, 512 * K, D}};
  CHECK(r == expected);
  CHECK(data_bytes(r) == M + 512 * K);
}

TEST_CASE("livemig top_image_ranges: extents cut differently in the two maps", "[livemig][disk_extents]") {
  // A top range 0..100 over allocation data 0..30, zero 30..60, data 60..200,
  // and a second top range 150..170 joined from two depth extents.
  std::vector<NbdExtent> allocation = {{0, 30, 0}, {30, 30, 3}, {60, 140, 0}};
  std::vector<NbdExtent> depth = {{0, 100, 1}, {100, 50, 2}, {150, 10, 1}, {160, 10, 1}, {170, 30, 0}};
  std::vector<DiskRange> expected = {{0, 30, D}, {30, 30, Z}, {60, 40, D}, {150, 20, D}};
  CHECK(top_image_ranges(depth, allocation) == expected);
  // A hole that is not zero-flagged (HOLE alone) is data: only ZERO may be skipped.
  std::vector<NbdExtent> hole_only = {{0, 200, 1}};
  std::vector<NbdExtent> all_top = {{0, 200, 1}};
  CHECK(top_image_ranges(all_top, hole_only) == std::vector<DiskRange>{{0, 200, D}});
}

TEST_CASE("livemig dirty_ranges: the dirty extents, zero or data", "[livemig][disk_extents]") {
  std::vector<NbdExtent> dirty = {{0, M, 0}, {M, 64 * K, 1}, {M + 64 * K, 9 * M, 0}, {10 * M, 64 * K, 1},
                                  {10 * M + 64 * K, 64 * K, 1}, {10 * M + 128 * K, 6 * M, 0}};
  std::vector<NbdExtent> allocation = {{0, M, 0}, {M, 64 * K, 3}, {M + 64 * K, 15 * M - 64 * K, 0}};
  std::vector<DiskRange> expected = {{M, 64 * K, Z}, {10 * M, 128 * K, D}};
  CHECK(dirty_ranges(dirty, allocation) == expected);
  CHECK(dirty_ranges(std::vector<NbdExtent>{{0, 16 * M, 0}}, allocation).empty());
  CHECK(dirty_ranges({}, allocation).empty());
}
