#include <catch2/catch.hpp>

#include "utsushi/guest/device_names.h"

using namespace utsushi::guest;

TEST_CASE("bus-specific device paths parse to disk and partition", "[guest][devices]") {
  CHECK(parse_disk_path("/dev/sda2") == DiskPartRef{0, 2});
  CHECK(parse_disk_path("/dev/sdb") == DiskPartRef{1, 0});
  CHECK(parse_disk_path("/dev/hdc1") == DiskPartRef{2, 1});
  CHECK(parse_disk_path("/dev/vda1") == DiskPartRef{0, 1});
  CHECK(parse_disk_path("/dev/xvdb3") == DiskPartRef{1, 3});
  CHECK(parse_disk_path("/dev/sdaa1") == DiskPartRef{26, 1});
  CHECK(parse_disk_path("/dev/nvme0n1p2") == DiskPartRef{0, 2});
  CHECK(parse_disk_path("/dev/nvme1n1") == DiskPartRef{1, 0});
  CHECK(parse_disk_path("/dev/cciss/c0d1p3") == DiskPartRef{1, 3});
  CHECK(parse_disk_path("/dev/mmcblk0p1") == DiskPartRef{0, 1});
  CHECK_FALSE(parse_disk_path("/dev/mapper/vg-root"));
  CHECK_FALSE(parse_disk_path("/dev/md0"));
  CHECK_FALSE(parse_disk_path("/dev/vg0/root"));
  CHECK_FALSE(parse_disk_path("UUID=abc"));
  CHECK(parse_hardware_link("/dev/disk/by-id/ata-SAMSUNG_SSD_123-part2") == 2);
  CHECK(parse_hardware_link("/dev/disk/by-path/pci-0000:00:1f.2-ata-1") == 0);
  CHECK_FALSE(parse_hardware_link("/dev/disk/by-uuid/abc"));
}

TEST_CASE("device map: stable names and lookups", "[guest][devices]") {
  std::vector<DeviceInfo> devs;
  devs.push_back({"/dev/sda1", {}, DiskPartRef{0, 1}, "ext4", "aaaa-boot", "boot", "p-1"});
  devs.push_back({"/dev/sda2", {}, DiskPartRef{0, 2}, "LVM2_member", "", "", "p-2"});
  devs.push_back({"/dev/sda3", {}, DiskPartRef{0, 3}, "swap", "cccc-swap", "", "p-3"});
  devs.push_back({"/dev/vg0/root", {"/dev/mapper/vg0-root"}, std::nullopt, "ext4", "dddd-root", "root", ""});
  DeviceMap map(devs, 1);
  CHECK(map.stable_spec("/dev/sda1") == "UUID=aaaa-boot");
  CHECK(map.stable_spec("/dev/hda3") == "UUID=cccc-swap");  // same disk on another bus
  CHECK(map.stable_spec("/dev/disk/by-id/ata-X-part1") == "UUID=aaaa-boot");  // single disk
  CHECK_FALSE(map.stable_spec("/dev/sda2"));  // no filesystem UUID: kept
  CHECK_FALSE(map.stable_spec("/dev/sdb1"));  // not captured
  CHECK_FALSE(map.stable_spec("/dev/mapper/vg0-root"));  // LVM names are kept
  CHECK(map.find("UUID=AAAA-BOOT") == &map.devices()[0]);
  CHECK(map.find("LABEL=root") == &map.devices()[3]);
  CHECK(map.find("/dev/mapper/vg0-root") == &map.devices()[3]);
  CHECK(map.find("PARTUUID=p-3") == &map.devices()[2]);
  CHECK(map.find("/dev/sdb1") == nullptr);
  CHECK(map.find("UUID=ffff") == nullptr);
  CHECK(DeviceMap::names_a_block_device("/dev/sdc1"));
  CHECK_FALSE(DeviceMap::names_a_block_device("tmpfs"));
  CHECK_FALSE(DeviceMap::names_a_block_device("server:/export"));
}
