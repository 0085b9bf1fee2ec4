#include <catch2/catch.hpp>

#include "disk_test_util.h"
#include "test_support.h"
#include "utsushi/disk/partition_table.h"

using namespace utsushi;
using utsushi::disk::TableKind;
using utsushi::disk::PartitionTable;

using utsushi::disk::read_partition_table;
using disk::test::sh;

namespace {

Result<PartitionTable> table_of(const std::string& path) {
  auto dev = UTSUSHI_TRY(disk::test::open_disk(path));
  return read_partition_table(*dev);
}

}  // namespace

TEST_CASE("disk::read_partition_table: MBR with primary, extended and logical partitions", "[disk]") {
  if (!disk::test::have("sfdisk")) {
    WARN("sfdisk missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  std::string d = dir.file("mbr.raw");
  REQUIRE(sh("truncate -s 64M " + d + " && printf 'label: dos\\nstart=2048,size=8M,type=83,bootable\\n"
             "size=8M,type=82\\nsize=4M,type=83\\nsize=40M,type=5\\nsize=10M,type=83\\nsize=10M,type=7\\n' | sfdisk -q " + d) == 0);
  auto t = table_of(d);
  REQUIRE(t);
  CHECK(t->kind == TableKind::mbr);
  REQUIRE(t->partitions.size() == 5);
  CHECK(t->partitions[0].bootable);
  CHECK(t->partitions[0].offset == 1u << 20);
  CHECK(t->partitions[1].type == "0x82");
  CHECK(t->partitions[3].number == 5);
  CHECK(t->partitions[4].number == 6);
  CHECK(t->partitions[4].type == "0x07");
  // The MBR gap and every EBR are metadata.
  CHECK(t->metadata.contains(0, 1u << 20));
  CHECK(t->metadata.ranges().size() >= 3);  // the gap and two EBRs
}

TEST_CASE("disk::read_partition_table: GPT with both headers, and damaged copies", "[disk]") {
  if (!disk::test::have("sfdisk")) {
    WARN("sfdisk missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  std::string d = dir.file("gpt.raw");
  REQUIRE(sh("truncate -s 32M " + d + " && printf 'label: gpt\\nstart=2048,size=8M,name=one\\nsize=8M,type="
             "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F\\n' | sfdisk -q " + d) == 0);
  auto t = table_of(d);
  REQUIRE(t);
  CHECK(t->kind == TableKind::gpt);
  REQUIRE(t->partitions.size() == 2);
  CHECK(t->partitions[0].name == "one");
  CHECK(t->partitions[1].type == "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f");
  CHECK(t->warnings.empty());
  // The backup GPT (last 33 sectors) is metadata.
  CHECK(t->metadata.contains((32u << 20) - 33 * 512, 33 * 512));

  SECTION("primary header damaged: the backup is used, with a warning") {
    REQUIRE(sh("printf 'XXXX' | dd of=" + d + " bs=1 seek=600 conv=notrunc") == 0);
    auto t2 = table_of(d);
    REQUIRE(t2);
    CHECK(t2->partitions.size() == 2);
    REQUIRE(t2->warnings.size() == 1);
    CHECK(t2->warnings[0].find("primary GPT header") != std::string::npos);
  }
  SECTION("both headers damaged: a clear error") {
    REQUIRE(sh("printf 'XXXX' | dd of=" + d + " bs=1 seek=600 conv=notrunc") == 0);
    REQUIRE(sh("printf 'XXXX' | dd of=" + d + " bs=1 seek=$((32*1024*1024-512+8)) conv=notrunc") == 0);
    auto t2 = table_of(d);
    REQUIRE_FALSE(t2);
    CHECK(t2.error().code() == Errc::corruption);
    CHECK(t2.error().message().find("GPT is corrupt") != std::string::npos);
  }
  SECTION("entry array damaged in the primary only") {
    REQUIRE(sh("printf 'XXXX' | dd of=" + d + " bs=1 seek=1100 conv=notrunc") == 0);
    auto t2 = table_of(d);
    REQUIRE(t2);
    CHECK(t2->partitions.size() == 2);
    CHECK_FALSE(t2->warnings.empty());
  }
}

TEST_CASE("disk::read_partition_table: a truncated image is an error naming the cause", "[disk]") {
  if (!disk::test::have("sfdisk")) {
    WARN("sfdisk missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  std::string d = dir.file("mbr.raw");
  REQUIRE(sh("truncate -s 64M " + d + " && printf 'label: dos\\nstart=2048,size=60M,type=83\\n' | sfdisk -q " + d +
             " && truncate -s 20M " + d) == 0);
  auto t = table_of(d);
  REQUIRE_FALSE(t);
  CHECK(t.error().code() == Errc::corruption);
  CHECK(t.error().message().find("truncated") != std::string::npos);

  std::string g = dir.file("gpt.raw");
  REQUIRE(sh("truncate -s 64M " + g + " && printf 'label: gpt\\nstart=2048,size=60M\\n' | sfdisk -q " + g +
             " && truncate -s 20M " + g) == 0);
  auto t2 = table_of(g);
  REQUIRE_FALSE(t2);
  CHECK(t2.error().code() == Errc::corruption);
}

TEST_CASE("disk::read_partition_table: no table, random bytes and tiny disks", "[disk]") {
  utsushi::test::TempDir dir;
  std::string d = dir.file("none.raw");
  utsushi::test::make_sparse_file(d, 1 << 20);
  auto t = table_of(d);
  REQUIRE(t);
  CHECK(t->kind == TableKind::none);
  utsushi::test::write_at(d, 0, utsushi::test::pattern(1 << 20, 3));
  auto t2 = table_of(d);  // garbage: never a crash, either no table or an error
  CHECK((t2 || t2.error().code() == Errc::corruption));
  std::string tiny = dir.file("tiny.raw");
  utsushi::test::make_sparse_file(tiny, 100);
  auto t3 = table_of(tiny);
  REQUIRE(t3);
  CHECK(t3->kind == TableKind::none);
}
