// Layout operations a restore needs, checked on tables and, for the disk
// size change, on real files read back by sfdisk and sgdisk.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "disk_test_util.h"
#include "utsushi/disk/layout_ops.h"

using namespace utsushi;
using namespace utsushi::disk;
using disk::test::have;
using disk::test::sh;

namespace {

using disk::test::MiB;

PartitionTable gpt_table(std::uint64_t disk_size) {
  PartitionTable t = disk::test::empty_gpt(disk_size);
  t.partitions.push_back({1, 1 * MiB, 8 * MiB, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "esp", false,
                          "11111111-2222-3333-4444-555555555555", 0, 0});
  t.partitions.push_back({2, 9 * MiB, 20 * MiB, "0fc63daf-8483-4772-8e79-3d69d8477de4", "root", false,
                          "22222222-2222-3333-4444-555555555555", 0, 0});
  t.metadata = table_metadata(t);
  return t;
}

// Debian's default MBR layout: root, then an extended partition holding swap.
PartitionTable mbr_table(std::uint64_t disk_size) {
  PartitionTable t;
  t.kind = TableKind::mbr;
  t.disk_size = disk_size;
  t.disk_id = "0x12345678";
  t.partitions.push_back({1, 1 * MiB, 20 * MiB, "0x83", "", true, "", 0, 0});
  t.extended = MbrExtended{2, 0x05, 22 * MiB - 512, 10 * MiB + 512};
  t.partitions.push_back({5, 22 * MiB, 10 * MiB, "0x82", "", false, "", 0, 22 * MiB - 512});
  return t;
}

}  // namespace

TEST_CASE("disk::check_layout refuses inconsistent tables", "[disk][layout]") {
  PartitionTable g = gpt_table(64 * MiB);
  CHECK(check_layout(g));
  auto expect = [](PartitionTable t, Errc code) {
    auto r = check_layout(t);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == code);
    return r.error().message();
  };
  PartitionTable t = g;
  t.partitions[1].offset = 5 * MiB;  // overlaps partition 1
  CHECK(expect(t, Errc::invalid_argument).find("overlap") != std::string::npos);
  t = g;
  t.partitions[0].offset += 100;  // not sector-aligned
  expect(t, Errc::invalid_argument);
  t = g;
  t.partitions[1].length = 80 * MiB;  // past the disk
  CHECK(expect(t, Errc::out_of_range).find("needs at least") != std::string::npos);
  t = g;
  t.partitions[1].number = 129;  // beyond the entry array
  expect(t, Errc::invalid_argument);
  t = g;
  t.gpt.first_usable_lba = 20;  // the primary array (LBA 2..33) would reach into the usable area
  expect(t, Errc::invalid_argument);
  t = g;
  t.partitions[0].offset = std::numeric_limits<std::uint64_t>::max() - 511;  // offset + length overflows
  expect(t, Errc::invalid_argument);

  PartitionTable m = mbr_table(64 * MiB);
  CHECK(check_layout(m));
  t = m;
  t.partitions[1].ebr_offset = 21 * MiB;  // the first EBR must open the extended partition
  expect(t, Errc::invalid_argument);
  t = m;
  t.partitions[0].number = 2;  // the extended partition's slot
  expect(t, Errc::invalid_argument);
  t = m;
  t.partitions[0].offset = 0;  // over the MBR
  expect(t, Errc::invalid_argument);
  t = m;
  t.disk_size = 4ull << 40;
  t.partitions[0].offset = 3ull << 40;  // beyond 2^32 sectors
  expect(t, Errc::invalid_argument);
}

TEST_CASE("disk::resize_disk moves the GPT backup to the end, sgdisk and sfdisk agree", "[disk][layout]") {
  utsushi::test::TempDir dir;
  std::string d = dir.file("grow.raw");
  PartitionTable t = gpt_table(64 * MiB);
  REQUIRE(disk::test::write_table_file(t, d));
  REQUIRE(sh("truncate -s 128M " + d) == 0);
  auto before = disk::test::read_table_file(d);
  REQUIRE(before);
  CHECK(before->gpt.backup_lba == 64 * MiB / 512 - 1);  // still where the small disk ended

  auto grown = resize_disk(*before, 128 * MiB);
  REQUIRE(grown);
  CHECK(grown->gpt.backup_lba == 128 * MiB / 512 - 1);
  CHECK(grown->gpt.backup_entries_lba == 128 * MiB / 512 - 33);
  CHECK(grown->gpt.last_usable_lba == 128 * MiB / 512 - 34);
  CHECK(grown->partitions == t.partitions);
  CHECK(grown->metadata.contains(128 * MiB - 33 * 512, 33 * 512));
  REQUIRE(disk::test::write_table_file(*grown, d));
  auto after = disk::test::read_table_file(d);
  REQUIRE(after);
  CHECK(after->gpt == grown->gpt);
  CHECK(after->warnings.empty());
  if (have("sgdisk") && have("sfdisk")) {
    CHECK(sh("sgdisk -v " + d + " | grep -q 'No problems found'") == 0);
    REQUIRE(sh("sfdisk --json " + d + " > " + dir.file("j")) == 0);
    std::ifstream f(dir.file("j"));
    CHECK(nlohmann::json::parse(f)["partitiontable"]["lastlba"] == 128 * MiB / 512 - 34);
  }

  // Smaller: fits while the last partition does; else the size needed is named.
  auto shrunk = resize_disk(t, 30 * MiB);
  REQUIRE(shrunk);
  CHECK(shrunk->gpt.backup_lba == 30 * MiB / 512 - 1);
  auto too_small = resize_disk(t, 29 * MiB);
  REQUIRE_FALSE(too_small);
  CHECK(too_small.error().code() == Errc::out_of_range);
  CHECK(minimum_disk_size(t) == 29 * MiB + 33 * 512);
  CHECK(too_small.error().message().find(std::to_string(29 * MiB + 33 * 512)) != std::string::npos);
  CHECK(resize_disk(t, minimum_disk_size(t)));
}

TEST_CASE("disk::resize_partition grows and shrinks in place, MBR extended follows its last logical", "[disk][layout]") {
  PartitionTable g = gpt_table(64 * MiB);
  auto room = max_partition_length(g, 2);
  REQUIRE(room);
  CHECK(*room == (64 * MiB / 512 - 34 + 1) * 512 - 9 * MiB);
  auto grown = resize_partition(g, 2, *room);
  REQUIRE(grown);
  CHECK(grown->partitions[1].length == *room);
  CHECK(resize_partition(g, 2, *room + 512).error().code() == Errc::out_of_range);  // into the backup array
  CHECK(resize_partition(g, 1, 9 * MiB).error().code() == Errc::invalid_argument);     // onto partition 2
  CHECK(resize_partition(g, 1, 4 * MiB));
  CHECK(resize_partition(g, 7, 4 * MiB).error().code() == Errc::not_found);

  PartitionTable m = mbr_table(64 * MiB);
  auto swap = resize_partition(m, 5, 40 * MiB);
  REQUIRE(swap);
  CHECK(swap->extended->end() == 62 * MiB);
  auto smaller = resize_partition(m, 5, 2 * MiB);
  REQUIRE(smaller);
  CHECK(smaller->extended->end() == 24 * MiB);
  CHECK(resize_partition(m, 5, 43 * MiB).error().code() == Errc::out_of_range);  // past the disk

  utsushi::test::TempDir dir;
  std::string d = dir.file("mbr.raw");
  REQUIRE(disk::test::write_table_file(*swap, d));
  if (have("sfdisk")) {
    CHECK(sh("sfdisk --verify " + d + " | grep -q 'No errors detected'") == 0);
  }
  auto back = disk::test::read_table_file(d);
  REQUIRE(back);
  CHECK(back->extended == swap->extended);
  CHECK(back->partitions == swap->partitions);
}

TEST_CASE("disk::move_partition returns the bytes to move and keeps EBRs in place", "[disk][layout]") {
  PartitionTable g = gpt_table(64 * MiB);
  auto moved = move_partition(g, 2, 20 * MiB);
  REQUIRE(moved);
  CHECK(moved->data == ByteMove{9 * MiB, 20 * MiB, 20 * MiB});
  CHECK(moved->data.overlaps());
  CHECK(moved->table.partitions[1].offset == 20 * MiB);
  CHECK(ByteMove{0, 10, 10}.overlaps() == false);
  CHECK(move_partition(g, 2, 4 * MiB).error().code() == Errc::invalid_argument);  // onto partition 1
  CHECK(move_partition(g, 2, 50 * MiB).error().code() == Errc::out_of_range);

  // MBR: a second logical partition moves with its EBR.
  PartitionTable m = mbr_table(64 * MiB);
  m.extended->length = 40 * MiB;
  m.partitions[1].length = 5 * MiB;
  m.partitions.push_back({6, 30 * MiB, 4 * MiB, "0x83", "", false, "", 0, 29 * MiB});
  REQUIRE(check_layout(m));
  auto m2 = move_partition(m, 6, 40 * MiB);
  REQUIRE(m2);
  CHECK(m2->table.partitions[2].ebr_offset == 39 * MiB);
  CHECK(m2->data == ByteMove{30 * MiB, 40 * MiB, 4 * MiB});
  // The first logical keeps the first EBR at the start of the extended partition.
  auto m3 = move_partition(m, 5, 23 * MiB);
  REQUIRE(m3);
  CHECK(m3->table.partitions[1].ebr_offset == m.extended->offset);
}
