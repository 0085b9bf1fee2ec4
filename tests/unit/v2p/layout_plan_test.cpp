// The restore layout for targets of every size, on synthetic disk plans.
#include <catch2/catch.hpp>

#include "utsushi/disk/layout_ops.h"
#include "utsushi/v2p/layout_plan.h"

using namespace utsushi;
using namespace utsushi::v2p;

namespace {

constexpr std::uint64_t MiB = 1u << 20;
constexpr std::uint64_t GiB = 1u << 30;

disk::PartitionTable empty_gpt(std::uint64_t disk_size) {
  disk::PartitionTable t;
  t.kind = disk::TableKind::gpt;
  t.disk_size = disk_size;
  t.disk_id = "01234567-89ab-cdef-0123-456789abcdef";
  const std::uint64_t sectors = disk_size / 512;
  t.gpt = {2048, sectors - 34, 2, sectors - 1, sectors - 33, 128, 128};
  return t;
}

disk::VolumeMap volume(unsigned n, std::string fs, std::uint64_t offset, std::uint64_t size, std::uint64_t used) {
  disk::VolumeMap v;
  v.name = std::string("p").append(std::to_string(n));
  v.filesystem = std::move(fs);
  v.disk_offset = offset;
  v.size = size;
  v.full_copy = v.filesystem == "unknown";
  v.used.add(offset, v.full_copy ? size : used);
  v.fs_used_bytes = used;
  v.uuid = std::string("uuid-").append(v.name);
  return v;
}

// born-virtual's layout: a BIOS boot partition, then / (ext4) to the end.
disk::DiskPlan born_virtual(std::uint64_t size, std::uint64_t used) {
  disk::DiskPlan p;
  p.size = size;
  p.table = empty_gpt(size);
  const std::uint64_t end = (size / 512 - 34) * 512;
  p.table.partitions.push_back({1, 1 * MiB, 1 * MiB, "21686148-6449-6e6f-744e-656564454649", "", false, "", 0, 0});
  p.table.partitions.push_back({2, 2 * MiB, end - 2 * MiB, "0fc63daf-8483-4772-8e79-3d69d8477de4", "", false, "", 0, 0});
  p.table.metadata = disk::table_metadata(p.table);
  p.volumes.push_back(volume(1, "unknown", 1 * MiB, 1 * MiB, 1 * MiB));
  p.volumes.push_back(volume(2, "ext4", 2 * MiB, end - 2 * MiB, used));
  return p;
}

// physical-server's layout: /boot, /, swap on an MBR.
disk::DiskPlan physical(std::uint64_t size) {
  disk::DiskPlan p;
  p.size = size;
  p.table.kind = disk::TableKind::mbr;
  p.table.disk_size = size;
  p.table.disk_id = "0x12345678";
  p.table.partitions.push_back({1, 1 * MiB, 256 * MiB, "0x83", "", true, "", 0, 0});
  p.table.partitions.push_back({2, 257 * MiB, size - 513 * MiB, "0x83", "", false, "", 0, 0});
  p.table.partitions.push_back({3, size - 256 * MiB, 256 * MiB, "0x82", "", false, "", 0, 0});
  p.table.metadata = disk::table_metadata(p.table);
  p.volumes.push_back(volume(1, "ext4", 1 * MiB, 256 * MiB, 60 * MiB));
  p.volumes.push_back(volume(2, "ext4", 257 * MiB, size - 513 * MiB, 900 * MiB));
  p.volumes.push_back(volume(3, "swap", size - 256 * MiB, 256 * MiB, 4096));
  return p;
}

}  // namespace

TEST_CASE("v2p::parse_grow", "[v2p][layout]") {
  CHECK(parse_grow("auto")->kind == GrowChoice::Kind::automatic);
  CHECK(parse_grow("none")->kind == GrowChoice::Kind::none);
  CHECK(*parse_grow("2") == GrowChoice{GrowChoice::Kind::partition, 2});
  CHECK(*parse_grow("p3") == GrowChoice{GrowChoice::Kind::partition, 3});
  for (const char* bad : {"", "0", "x", "2x", "-1", "p"}) {
    CHECK(parse_grow(bad).error().code() == Errc::invalid_argument);
  }
}

TEST_CASE("v2p::plan_layout same size keeps everything", "[v2p][layout]") {
  auto image = born_virtual(4 * GiB, 900 * MiB);
  auto l = plan_layout(image, 4 * GiB, {});
  REQUIRE(l);
  CHECK_FALSE(l->resized);
  CHECK(l->target.partitions == image.table.partitions);
  CHECK(l->target.gpt == image.table.gpt);
  for (const PartitionMove& m : l->partitions) {
    CHECK(m.action == FsAction::copy);
    CHECK(m.dst_offset == m.src_offset);
    CHECK(m.dst_length == m.src_length);
  }
}

TEST_CASE("v2p::plan_layout grows the last partition and moves the GPT backup", "[v2p][layout]") {
  auto l = plan_layout(born_virtual(4 * GiB, 900 * MiB), 8 * GiB, {});
  REQUIRE(l);
  REQUIRE(l->resized == 2u);
  const std::uint64_t sectors = 8 * GiB / 512;
  CHECK(l->target.gpt.backup_lba == sectors - 1);
  CHECK(l->target.gpt.last_usable_lba == sectors - 34);
  const PartitionMove* root = l->find(2);
  CHECK(root->action == FsAction::grow);
  CHECK(root->dst_offset == 2 * MiB);
  CHECK(root->dst_offset + root->dst_length == (sectors - 33) * 512);
  CHECK(l->find(1)->action == FsAction::copy);
  CHECK(disk::check_layout(l->target));
}

TEST_CASE("v2p::plan_layout shrinks when the data fits, refuses naming the size otherwise", "[v2p][layout]") {
  auto image = born_virtual(4 * GiB, 900 * MiB);
  auto l = plan_layout(image, 2 * GiB, {});
  REQUIRE(l);
  const PartitionMove* root = l->find(2);
  CHECK(root->action == FsAction::shrink);
  CHECK(root->dst_offset + root->dst_length <= 2 * GiB - 33 * 512);
  CHECK(root->dst_length >= root->min_length);
  CHECK(l->minimum_target_size < 2 * GiB);
  CHECK(l->minimum_target_size > 900 * MiB);

  auto small = plan_layout(image, 512 * MiB, {});
  REQUIRE_FALSE(small);
  CHECK(small.error().code() == Errc::out_of_range);
  CHECK(small.error().message().find("needs at least") != std::string::npos);
  CHECK(small.error().message().find("partition 2 (ext4)") != std::string::npos);

  // The size named is enough: planning onto it succeeds.
  auto fits = plan_layout(image, l->minimum_target_size, {});
  CHECK(fits);
}

TEST_CASE("v2p::plan_layout --grow none keeps the partitions", "[v2p][layout]") {
  auto image = born_virtual(4 * GiB, 900 * MiB);
  auto l = plan_layout(image, 6 * GiB, {GrowChoice::Kind::none, 0});
  REQUIRE(l);
  CHECK_FALSE(l->resized);
  CHECK(l->target.partitions == image.table.partitions);
  CHECK(l->target.gpt.backup_lba == 6 * GiB / 512 - 1);
  auto smaller = plan_layout(image, 3 * GiB, {GrowChoice::Kind::none, 0});
  REQUIRE_FALSE(smaller);
  CHECK(smaller.error().code() == Errc::out_of_range);
}

TEST_CASE("v2p::plan_layout: partitions after the grown one shift by whole MiB", "[v2p][layout]") {
  auto image = physical(4 * GiB);
  SECTION("auto picks the last resizable partition: swap, re-made") {
    auto l = plan_layout(image, 6 * GiB, {});
    REQUIRE(l);
    CHECK(l->resized == 3u);
    CHECK(l->find(3)->action == FsAction::remake_swap);
    CHECK(l->find(3)->dst_offset + l->find(3)->dst_length == 6 * GiB);
  }
  SECTION("larger, root named") {
    auto l = plan_layout(image, 6 * GiB + 300 * 1024, {GrowChoice::Kind::partition, 2});
    REQUIRE(l);
    const PartitionMove* swap = l->find(3);
    CHECK(swap->dst_offset - swap->src_offset == 2 * GiB);  // 300 KiB are left: not a whole MiB
    CHECK(swap->dst_length == swap->src_length);
    CHECK(swap->action == FsAction::copy);
    CHECK(l->find(2)->action == FsAction::grow);
    CHECK(l->find(2)->dst_offset + l->find(2)->dst_length == swap->dst_offset);
    CHECK(disk::check_layout(l->target));
  }
  SECTION("smaller, root named") {
    auto l = plan_layout(image, 3 * GiB, {GrowChoice::Kind::partition, 2});
    REQUIRE(l);
    const PartitionMove* swap = l->find(3);
    CHECK(swap->src_offset - swap->dst_offset == 1 * GiB);
    CHECK(swap->dst_offset + swap->dst_length <= 3 * GiB);
    CHECK(l->find(2)->action == FsAction::shrink);
    CHECK(l->find(1)->dst_offset == 1 * MiB);
  }
}

TEST_CASE("v2p::plan_layout refuses what it cannot resize", "[v2p][layout]") {
  auto image = born_virtual(4 * GiB, 900 * MiB);
  auto r = plan_layout(image, 8 * GiB, {GrowChoice::Kind::partition, 1});
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::not_supported);
  r = plan_layout(image, 8 * GiB, {GrowChoice::Kind::partition, 9});
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::not_found);

  image.volumes[1].filesystem = "LVM2_member";
  r = plan_layout(image, 3 * GiB, {});
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::out_of_range);  // a PV cannot shrink: it needs its full size
  auto grown = plan_layout(image, 8 * GiB, {});
  REQUIRE(grown);
  CHECK(grown->find(2)->action == FsAction::grow_pv);
}

TEST_CASE("v2p::plan_layout: XFS is re-created when smaller, whole-disk filesystems follow the disk",
          "[v2p][layout]") {
  auto image = born_virtual(4 * GiB, 900 * MiB);
  image.volumes[1].filesystem = "xfs";
  auto l = plan_layout(image, 3 * GiB, {});
  REQUIRE(l);
  CHECK(l->find(2)->action == FsAction::recreate);

  disk::DiskPlan whole;
  whole.size = 1 * GiB;
  whole.volumes.push_back(volume(0, "ext4", 0, 1 * GiB, 100 * MiB));
  auto w = plan_layout(whole, 2 * GiB, {});
  REQUIRE(w);
  CHECK(w->find(0)->action == FsAction::grow);
  CHECK(w->find(0)->dst_length == 2 * GiB);
  CHECK(plan_layout(whole, 64 * MiB, {}).error().code() == Errc::out_of_range);
}

TEST_CASE("v2p::estimate_min_length", "[v2p][layout]") {
  disk::VolumeMap v = volume(2, "ext4", 0, 4 * GiB, 1 * GiB);
  std::uint64_t m = estimate_min_length(v);
  CHECK(m > 1 * GiB);
  CHECK(m < 2 * GiB);
  CHECK(m % MiB == 0);
  v.filesystem = "swap";
  CHECK(estimate_min_length(v) == 1 * MiB);
  v.filesystem = "xfs";
  v.used = {};
  v.used.add(0, 1 * MiB);
  v.fs_used_bytes = 1 * MiB;
  CHECK(estimate_min_length(v) >= 300 * MiB);
  v.filesystem = "vfat";
  CHECK(estimate_min_length(v) == v.size);
}
