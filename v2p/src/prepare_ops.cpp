// The list of preparation operations (see prepare.h).
#include <algorithm>
#include <optional>

#include <fmt/core.h>

#include "utsushi/guest/baremetal_ops.h"
#include "utsushi/guest/boot_ops.h"
#include "utsushi/guest/network_config.h"
#include "utsushi/guest/system_ops.h"
#include "utsushi/v2p/prepare.h"

namespace utsushi::v2p {
namespace {

// Storage drivers of real machines that the generic initramfs must hold (a
// driver built into the kernel counts as held): SATA/AHCI, NVMe, the common
// SAS/RAID HBAs, USB storage.
std::vector<std::string> hardware_storage_drivers() {
  return {"ahci", "nvme", "megaraid_sas", "mpt3sas", "usb_storage"};
}

guest::Firmware firmware_of(BootChoice b) {
  switch (b) {
    case BootChoice::bios: return guest::Firmware::bios;
    case BootChoice::uefi: return guest::Firmware::uefi;
    case BootChoice::automatic:
    case BootChoice::none: break;
  }
  return guest::Firmware::unknown;  // the guest's own
}

// The NIC names the guest's configuration binds to, in file order, once each.
std::vector<std::string> configured_nics(const guest::GuestOs& os) {
  std::vector<std::string> names;
  for (const guest::NetworkConfig& c : os.network) {
    for (const std::string& n : c.interfaces) {
      if (std::find(names.begin(), names.end(), n) == names.end()) {
        names.push_back(n);
      }
    }
  }
  return names;
}

// --nic-mac / --nic-name bind the guest's NIC; a guest that configures more
// than one NIC cannot tell which one the choice means.
Result<std::optional<guest::NicBinding>> nic_binding(const NicChoice& nic, const guest::GuestOs& os) {
  if (nic.kind != NicChoice::Kind::mac && nic.kind != NicChoice::Kind::name) {
    return std::nullopt;
  }
  std::vector<std::string> names = configured_nics(os);
  if (names.empty()) {
    return fail(Errc::failed_precondition,
                "the restored system configures no NIC by name: --nic-mac and --nic-name have nothing to bind");
  }
  if (names.size() > 1) {
    return fail(Errc::not_supported, fmt::format("the restored system configures {} NICs ({}, ...): --nic-mac and "
                                               "--nic-name bind one; use --nic-dhcp",
                                               names.size(), names.front()));
  }
  guest::NicBinding b;
  b.name = names.front();
  if (nic.kind == NicChoice::Kind::mac) {
    b.mac = nic.value;
  } else {
    b.new_name = nic.value;
  }
  return b;
}

}  // namespace

Result<guest::OperationList> preparation_operations(const PrepareOptions& options, const guest::GuestOs& os) {
  guest::OperationList ops;
  ops.push_back(guest::make_stale_caches_op());
  ops.push_back(guest::make_device_names_op());
  // The NIC operations come before the initramfs: its udev holds the .link
  // files and persistent-net rules they write, and names the NIC by them.
  if (auto binding = UTSUSHI_TRY(nic_binding(options.nic, os))) {
    ops.push_back(guest::make_nic_names_op({.nics = {*binding}}));
  }
  if (options.nic.kind == NicChoice::Kind::dhcp) {
    ops.push_back(guest::make_nic_dhcp_op());
  }
  ops.push_back(guest::make_initramfs_op({.add_drivers = hardware_storage_drivers(), .generic = true}));
  ops.push_back(guest::make_boot_loader_op({.cmdline_add = {"console=" + options.serial_tty + ",115200n8"}}));
  if (options.boot != BootChoice::none) {
    ops.push_back(guest::make_boot_fallback_op({.firmware = firmware_of(options.boot), .reinstall_bios = false}));
  }
  ops.push_back(guest::make_serial_console_op({.tty = options.serial_tty, .speed = 115200}));
  ops.push_back(guest::make_vm_services_op());
  return ops;
}

}  // namespace utsushi::v2p
