#include "utsushi/p2v/hw_profile.h"

#include <catch2/catch.hpp>

#include "test_support.h"

using namespace utsushi;
using namespace utsushi::p2v;
using namespace utsushi::disk;

namespace {

Partition partition(const std::string& type) {
  Partition part;
  part.number = 1;
  part.offset = 1 << 20;
  part.length = 100 << 20;
  part.type = type;
  return part;
}

DiskPlan plan(const std::string& source, TableKind kind, std::vector<Partition> parts, bool boot_code) {
  DiskPlan p;
  p.source = source;
  p.size = 1ull << 30;
  p.table.kind = kind;
  p.table.partitions = std::move(parts);
  p.table.has_boot_code = boot_code;
  return p;
}

}  // namespace

TEST_CASE("p2v::hardware_profile of image files records what the disks tell", "[p2v][hw_profile]") {
  test::TempDir dir;
  auto uefi = plan(dir.file("a.raw"), TableKind::gpt, {partition("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")}, false);
  auto bios = plan(dir.file("b.raw"), TableKind::mbr, {partition("0x83")}, true);

  auto p = hardware_profile({bios, uefi}, {"b.qcow2", "a.qcow2"});
  CHECK(p.source == virt::ProfileSource::images);
  CHECK(p.firmware == virt::FirmwareKind::uefi);
  CHECK(p.firmware_evidence == "an EFI system partition on " + uefi.source);
  CHECK_FALSE(p.cpus);
  CHECK_FALSE(p.nics);
  REQUIRE(p.disks.size() == 2);
  CHECK(p.disks[0].image == "b.qcow2");
  CHECK(p.disks[0].partition_table == "dos");
  CHECK(p.disks[1].size == 1ull << 30);

  CHECK(hardware_profile({bios}, {"b.qcow2"}).firmware == virt::FirmwareKind::bios);
  auto none = hardware_profile({plan(dir.file("c.raw"), TableKind::none, {}, false)}, {"c.qcow2"});
  CHECK(none.firmware == virt::FirmwareKind::unknown);

  // What capture writes reads back as it was.
  REQUIRE(write_profile(p, dir.file("hardware.json")));
  auto back = virt::read_profile(dir.file("hardware.json"));
  REQUIRE(back);
  CHECK(*back == p);
}
