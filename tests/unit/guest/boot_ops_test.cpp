#include <catch2/catch.hpp>

#include "utsushi/guest/boot_ops.h"
#include "utsushi/guest/system_ops.h"

using namespace utsushi::guest;
using Names = std::vector<std::string>;

TEST_CASE("module names from paths and listings", "[guest][initramfs]") {
  CHECK(module_name("virtio-blk") == "virtio_blk");
  CHECK(module_name("usr/lib/modules/6.1.0-9-amd64/kernel/drivers/block/virtio_blk.ko") == "virtio_blk");
  CHECK(module_name("kernel/drivers/ata/ahci.ko.zst") == "ahci");
  CHECK(module_name("kernel/fs/ext4/ext4.ko.xz:") == "ext4");
  // lsinitramfs prints paths; lsinitrd prints ls -l lines.
  const std::string lsinitramfs =
      "usr/lib/modules/6.1.0-9-amd64/kernel/drivers/ata\n"
      "usr/lib/modules/6.1.0-9-amd64/kernel/drivers/ata/ahci.ko\n"
      "usr/lib/modules/6.1.0-9-amd64/kernel/drivers/ata/libahci.ko\n"
      "usr/lib/modules/6.1.0-9-amd64/modules.dep\n"
      "usr/lib/modules/6.1.0-9-amd64/kernel/drivers/ata/ahci.ko\n";
  CHECK(modules_in_listing(lsinitramfs) == Names{"ahci", "libahci"});
  const std::string lsinitrd =
      "Image: /boot/initramfs-4.18.0.img: 30M\n"
      "-rw-r--r--   1 root     root        29236 Jan  1  2020 usr/lib/modules/4.18.0/kernel/drivers/block/"
      "virtio_blk.ko.xz\n"
      "drwxr-xr-x   3 root     root            0 Jan  1  2020 usr/lib/modules/4.18.0/kernel\n";
  CHECK(modules_in_listing(lsinitrd) == Names{"virtio_blk"});
}

TEST_CASE("modules.builtin / modules.dep and the initramfs-tools policy", "[guest][initramfs]") {
  CHECK(modules_in_index("kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n") ==
        Names{"virtio", "virtio_ring"});
  CHECK(modules_in_index("kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko\n") ==
        Names{"virtio_blk"});
  CHECK(initramfs_tools_policy({}) == "most");
  CHECK(initramfs_tools_policy({"# comment\nMODULES=most\nBUSYBOX=auto\n", "MODULES=dep\n"}) == "dep");
  CHECK(initramfs_tools_policy({"MODULES=dep\n", "# utsushi fixture\nMODULES=\"list\"\n"}) == "list");
}

TEST_CASE("the conversion operations' names, defaults and table", "[guest][operation]") {
  OperationList all;
  all.push_back(make_stale_caches_op());
  all.push_back(make_device_names_op());
  all.push_back(make_absent_disks_op());
  all.push_back(make_nic_names_op({}));
  all.push_back(make_hardware_services_op());
  all.push_back(make_serial_console_op({}));
  all.push_back(make_initramfs_op({}));
  all.push_back(make_boot_loader_op({}));
  all.push_back(make_boot_fallback_op({}));
  Names names;
  for (const auto& op : all) {
    names.emplace_back(op->name());
    CHECK(op->enabled_by_default());
    CHECK_FALSE(op->description().empty());
  }
  CHECK(names == Names{"stale-caches", "device-names", "absent-disks", "nic-names", "hardware-services",
                       "serial-console", "initramfs", "boot-loader", "boot-fallback"});
  GuestOs os;
  CHECK_FALSE(all[3]->applies(os).applies);  // nic-names: nothing bound, no NIC given
  os.systemd = false;
  CHECK_FALSE(all[4]->applies(os).applies);  // hardware-services: systemd only
  CHECK(pin_link_path("ens3") == "/etc/systemd/network/05-utsushi-ens3.link");
  auto units = HardwareServicesParams::default_hardware_units();
  CHECK(std::find(units.begin(), units.end(), "ipmievd.service") != units.end());
}
