// The restore view on a real GPT disk image (made with sfdisk): copied onto a
// larger target full of junk, the partitions land where the layout says, the
// moved partition's bytes are the image's, the grown part reads as zeros and
// sfdisk reads the new table.
#include <catch2/catch.hpp>

#include <algorithm>

#include "test_support.h"
#include "utsushi/disk/disk_plan.h"
#include "utsushi/disk/used_blocks_filter.h"
#include "utsushi/imagefmt/copy.h"
#include "utsushi/imagefmt/raw.h"
#include "utsushi/v2p/restore_view.h"

using namespace utsushi;
using namespace utsushi::v2p;
using utsushi::test::have;
using utsushi::test::sh;

namespace {

constexpr std::uint64_t MiB = 1u << 20;

std::unique_ptr<imagefmt::BlockDevice> open_file(const std::string& path, imagefmt::Access access) {
  auto d = imagefmt::open_raw(path, imagefmt::RawOpenOptions{access, false});
  REQUIRE(d);
  return std::make_unique<imagefmt::BlockDevice>(std::move(*d));
}

}  // namespace

TEST_CASE("v2p::RestoreView onto a larger target: grown, shifted, zeroed, table rewritten", "[v2p][view]") {
  if (!have("sfdisk")) {
    WARN("sfdisk not installed: skipped");
    return;
  }
  utsushi::test::TempDir dir;
  const std::string image = dir.file("image.raw"), target = dir.file("target.raw");
  utsushi::test::make_sparse_file(image, 64 * MiB);
  REQUIRE(sh("printf 'label: gpt\\nstart=2048, size=16384\\nstart=18432, size=8192\\n' | sfdisk -q " + image) == 0);
  const auto p1 = utsushi::test::pattern(8 * MiB, 1), p2 = utsushi::test::pattern(4 * MiB, 2);
  utsushi::test::write_at(image, 1 * MiB, p1);
  utsushi::test::write_at(image, 9 * MiB, p2);
  // The target holds an old disk's data everywhere.
  {
    std::vector<std::uint8_t> junk(1 * MiB, 0xAA);
    utsushi::test::make_sparse_file(target, 128 * MiB);
    for (std::uint64_t off = 0; off < 128 * MiB; off += MiB) {
      utsushi::test::write_at(target, off, junk);
    }
  }
  auto src = open_file(image, imagefmt::Access::read_only);
  auto plan = disk::plan_disk(*src, image);
  REQUIRE(plan);
  // Unknown contents are copied whole; p1 is named as the one to grow, as if
  // it held a filesystem (the view does not look at filesystems).
  plan->volumes[0].filesystem = "ext4";
  auto layout = plan_layout(*plan, 128 * MiB, {GrowChoice::Kind::partition, 1});
  REQUIRE(layout);
  const PartitionMove* m1 = layout->find(1);
  const PartitionMove* m2 = layout->find(2);
  REQUIRE(m2->dst_offset == m2->src_offset + 114 * MiB);  // to the end, by whole MiB
  REQUIRE(m1->dst_length == m2->dst_offset - m1->dst_offset);

  auto used = disk::make_used_view(*src, plan->used);
  ContentSources sources;
  sources.image = used.get();
  auto view = make_restore_view(*layout, sources);
  REQUIRE(view);
  auto extents = (*view)->extents();
  REQUIRE(extents);
  bool saw_zero = false, saw_hole = false;
  for (const auto& e : *extents) {
    saw_zero |= e.type == imagefmt::ExtentType::zero;
    saw_hole |= e.type == imagefmt::ExtentType::hole;
  }
  CHECK(saw_zero);  // p1's grown part
  CHECK(saw_hole);  // between the partitions' old ends and the tail

  auto out = open_file(target, imagefmt::Access::read_write);
  imagefmt::CopyOptions c;
  c.target_is_zeroed = false;
  c.discard_holes = true;
  auto stats = imagefmt::copy_device(**view, *out, c);
  REQUIRE(stats);
  CHECK(stats->bytes_discarded > 0);

  CHECK(utsushi::test::read_at(target, m1->dst_offset, p1.size()) == p1);
  CHECK(utsushi::test::read_at(target, m2->dst_offset, p2.size()) == p2);
  auto grown = utsushi::test::read_at(target, m1->dst_offset + p1.size(), static_cast<std::size_t>(m1->dst_length - p1.size()));
  CHECK(std::all_of(grown.begin(), grown.end(), [](std::uint8_t b) { return b == 0; }));
  // sfdisk reads the new table, primary and backup alike (no complaints).
  CHECK(sh("sfdisk --verify " + target + " 2>&1 | grep -qiE 'corrupt|invalid|mismatch'") != 0);
  CHECK(sh("sfdisk -d " + target + " | grep -qE 'start= *2048, size= *249856,'") == 0);
  CHECK(sh("sfdisk -d " + target + " | grep -qE 'start= *251904, size= *8192,'") == 0);
}
