// Partition tables written by our encoders, read back by ours and by
// sfdisk/sgdisk (the oracles); tables written by sfdisk, read by ours and
// encoded again byte for byte.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "disk_test_util.h"
#include "utsushi/disk/layout_ops.h"
#include "utsushi/disk/partition_table.h"

using namespace utsushi;
using namespace utsushi::disk;
using disk::test::have;
using disk::test::sh;

namespace {

using disk::test::MiB;

PartitionTable sample_gpt(std::uint64_t disk_size) {
  PartitionTable t = disk::test::empty_gpt(disk_size);
  t.partitions.push_back({1, 1 * MiB, 8 * MiB, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI system", true,
                          "11111111-2222-3333-4444-555555555555", 1ull << 60, 0});
  t.partitions.push_back({2, 9 * MiB, 2 * MiB, "21686148-6449-6e6f-744e-656564454649", "bios \u00e9", false,
                          "22222222-2222-3333-4444-555555555555", 0, 0});
  t.partitions.push_back({5, 16 * MiB, 20 * MiB, "0fc63daf-8483-4772-8e79-3d69d8477de4", "root", false,
                          "55555555-2222-3333-4444-555555555555", 0, 0});
  return t;
}

PartitionTable sample_mbr(std::uint64_t disk_size) {
  PartitionTable t;
  t.kind = TableKind::mbr;
  t.disk_size = disk_size;
  t.disk_id = "0xdeadbeef";
  t.partitions.push_back({1, 1 * MiB, 8 * MiB, "0x83", "", true, "", 0, 0});
  t.partitions.push_back({3, 9 * MiB, 4 * MiB, "0x07", "", false, "", 0, 0});
  t.extended = MbrExtended{2, 0x05, 16 * MiB, 40 * MiB};
  t.partitions.push_back({5, 17 * MiB, 10 * MiB, "0x83", "", false, "", 0, 16 * MiB});
  t.partitions.push_back({6, 28 * MiB, 10 * MiB, "0x82", "", true, "", 0, 27 * MiB});
  t.partitions.push_back({7, 40 * MiB, 16 * MiB, "0x8e", "", false, "", 0, 39 * MiB + 512});
  return t;
}

PartitionTable read_back(const std::string& path) {
  auto t = disk::test::read_table_file(path);
  INFO((t ? std::string() : t.error().message()));
  REQUIRE(t);
  return *t;
}

nlohmann::json sfdisk_json(const std::string& path, const std::string& dir) {
  std::string out = dir + "/sfdisk.json";
  REQUIRE(sh("sfdisk --json " + path + " > " + out) == 0);
  std::ifstream f(out);
  return nlohmann::json::parse(f)["partitiontable"];
}

std::string upper(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

void check_same_layout(const PartitionTable& a, const PartitionTable& b) {
  CHECK(a.kind == b.kind);
  CHECK(a.disk_id == b.disk_id);
  CHECK(a.disk_size == b.disk_size);
  CHECK(a.partitions == b.partitions);
  CHECK(a.extended == b.extended);
  if (a.kind == TableKind::gpt) {
    CHECK(a.gpt == b.gpt);
  }
  CHECK(b.warnings.empty());
}

}  // namespace

TEST_CASE("disk::encode_partition_table: GPT round trip, and sfdisk/sgdisk agree", "[disk][gpt]") {
  utsushi::test::TempDir dir;
  std::string d = dir.file("gpt.raw");
  PartitionTable t = sample_gpt(64 * MiB);
  REQUIRE(disk::test::write_table_file(t, d));
  check_same_layout(t, read_back(d));
  if (!have("sfdisk") || !have("sgdisk")) {
    WARN("sfdisk or sgdisk missing; the oracle part is skipped");
    return;
  }
  CHECK(sh("sgdisk -v " + d + " | grep -q 'No problems found'") == 0);
  auto j = sfdisk_json(d, dir.path());
  CHECK(j["label"] == "gpt");
  CHECK(j["id"] == upper(t.disk_id));
  CHECK(j["firstlba"] == t.gpt.first_usable_lba);
  CHECK(j["lastlba"] == t.gpt.last_usable_lba);
  REQUIRE(j["partitions"].size() == t.partitions.size());
  for (std::size_t i = 0; i < t.partitions.size(); ++i) {
    const Partition& p = t.partitions[i];
    const auto& q = j["partitions"][i];
    CHECK(q["node"] == d + std::to_string(p.number));
    CHECK(q["start"] == p.offset / 512);
    CHECK(q["size"] == p.length / 512);
    CHECK(q["type"] == upper(p.type));
    CHECK(q["uuid"] == upper(p.uuid));
    CHECK(q["name"] == p.name);
  }
  CHECK(j["partitions"][0]["attrs"] == "LegacyBIOSBootable GUID:60");
}

TEST_CASE("disk::encode_partition_table: MBR with logical partitions, and sfdisk agrees", "[disk][mbr]") {
  utsushi::test::TempDir dir;
  std::string d = dir.file("mbr.raw");
  // Boot code in place must survive the encoder.
  utsushi::test::make_sparse_file(d, 64 * MiB);
  utsushi::test::write_at(d, 0, std::vector<std::uint8_t>(440, 0xEB));
  PartitionTable t = sample_mbr(64 * MiB);
  REQUIRE(disk::test::write_table_file(t, d));
  CHECK(utsushi::test::read_at(d, 0, 440) == std::vector<std::uint8_t>(440, 0xEB));
  PartitionTable back = read_back(d);
  check_same_layout(t, back);
  CHECK(back.has_boot_code);
  if (!have("sfdisk")) {
    WARN("sfdisk missing; the oracle part is skipped");
    return;
  }
  CHECK(sh("sfdisk --verify " + d + " | grep -q 'No errors detected'") == 0);
  auto j = sfdisk_json(d, dir.path());
  CHECK(j["label"] == "dos");
  CHECK(j["id"] == t.disk_id);
  // sfdisk lists the extended partition in its slot among the primaries.
  REQUIRE(j["partitions"].size() == t.partitions.size() + 1);
  std::map<std::string, nlohmann::json> by_node;
  for (const auto& q : j["partitions"]) {
    by_node[q["node"]] = q;
  }
  for (const Partition& p : t.partitions) {
    const auto& q = by_node[d + std::to_string(p.number)];
    CHECK(q["start"] == p.offset / 512);
    CHECK(q["size"] == p.length / 512);
    CHECK(std::stoul(q["type"].get<std::string>(), nullptr, 16) == std::stoul(p.type, nullptr, 16));
    CHECK(q.value("bootable", false) == p.bootable);
  }
  const auto& x = by_node[d + "2"];
  CHECK(x["start"] == t.extended->offset / 512);
  CHECK(x["size"] == t.extended->length / 512);
  CHECK(x["type"] == "5");
}

TEST_CASE("disk::encode_partition_table: tables sfdisk wrote encode to the same bytes", "[disk]") {
  if (!have("sfdisk")) {
    WARN("sfdisk missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  struct Case {
    const char* name;
    const char* script;
  };
  const Case cases[] = {
      {"gpt", "label: gpt\\nstart=2048,size=8M,name=\"EFI system\",type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B,"
              "attrs=\"LegacyBIOSBootable GUID:60\"\\nsize=16M,name=root\\n"},
      {"dos", "label: dos\\nstart=2048,size=8M,type=83,bootable\\nsize=8M,type=82\\nsize=4M,type=83\\n"
              "size=40M,type=5\\nsize=10M,type=83\\nsize=10M,type=7\\n"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      std::string d = dir.file(std::string(c.name) + ".raw");
      REQUIRE(sh("rm -f " + d + " && truncate -s 64M " + d + " && printf '" + c.script + "' | sfdisk -q " + d) == 0);
      PartitionTable t = read_back(d);
      auto writes = encode_partition_table(t);
      REQUIRE(writes);
      for (const SectorWrite& w : *writes) {
        INFO("offset " << w.offset);
        CHECK(utsushi::test::read_at(d, w.offset, w.bytes.size()) == w.bytes);
      }
    }
  }
}

TEST_CASE("disk::encode_partition_table: GPT on 4096-byte sectors round trip", "[disk][gpt]") {
  utsushi::test::TempDir dir;
  std::string d = dir.file("gpt4k.raw");
  PartitionTable t;
  t.kind = TableKind::gpt;
  t.sector_size = 4096;
  t.disk_size = 64 * MiB;
  t.disk_id = "0badf00d-89ab-cdef-0123-456789abcdef";
  const std::uint64_t sectors = t.disk_size / 4096;
  t.gpt = {256, sectors - 6, 2, sectors - 1, sectors - 5, 128, 128};  // 16 KiB arrays: 4 sectors each
  t.partitions.push_back({1, 1 * MiB, 16 * MiB, "0fc63daf-8483-4772-8e79-3d69d8477de4", "data", false,
                          "44444444-2222-3333-4444-555555555555", 0, 0});
  REQUIRE(disk::test::write_table_file(t, d));
  PartitionTable back = read_back(d);
  CHECK(back.sector_size == 4096);
  check_same_layout(t, back);
  CHECK(back.metadata.contains(t.disk_size - 5 * 4096, 5 * 4096));
}

TEST_CASE("disk::encode_partition_table refuses what its on-disk form cannot hold", "[disk]") {
  PartitionTable g = sample_gpt(64 * MiB);
  g.partitions[0].type = "not-a-guid";
  CHECK(encode_partition_table(g).error().code() == Errc::invalid_argument);
  g = sample_gpt(64 * MiB);
  g.partitions[0].name = std::string(40, 'n');
  CHECK(encode_partition_table(g).error().code() == Errc::invalid_argument);
  PartitionTable m = sample_mbr(64 * MiB);
  m.partitions[0].type = "0x183";
  CHECK(encode_partition_table(m).error().code() == Errc::invalid_argument);
  m = sample_mbr(64 * MiB);
  m.disk_id = "deadbeef";
  CHECK(encode_partition_table(m).error().code() == Errc::invalid_argument);
  CHECK(encode_partition_table(PartitionTable{}).error().code() == Errc::invalid_argument);
}
