#pragma once
// Making a restored system boot on the hardware: one libguestfs appliance over
// the restored target runs the guest library's operations (operation.h), in
// order, and reports every change:
//   stale-caches     blkid and LVM caches removed
//   device-names     fstab, crypttab, RESUME by UUID=
//   nic-names        the VM's NIC name pinned to the hardware NIC's MAC
//                    (--nic-mac) or renamed (--nic-name) in every config;
//   nic-dhcp         or DHCP on any NIC (--nic-dhcp; v2p's own operation)
//   initramfs        rebuilt by the guest's own tool as a generic image
//                    (initramfs-tools MODULES=most, dracut --no-hostonly), the
//                    storage drivers of real machines checked inside it; after
//                    the NIC operations, whose .link files and udev rules it holds
//   boot-loader      GRUB's configuration regenerated and checked
//   boot-fallback    BIOS: GRUB's boot code in the MBR and core image;
//                    UEFI: \EFI\BOOT\BOOTX64.EFI (no NVRAM entry needed)
//   serial-console   the getty on the serial console kept
//   vm-services      services of hypervisors listed (they stay idle on
//                    hardware; v2p's own operation, notes only)
// `v2p plan` runs the same list as a dry run over a throw-away overlay of the
// image.

#include <functional>
#include <string>
#include <string_view>

#include "utsushi/common/error.h"
#include "utsushi/guest/change.h"
#include "utsushi/guest/operation.h"
#include "utsushi/guest/session.h"

namespace utsushi::v2p {

enum class BootChoice { automatic, bios, uefi, none };
std::string_view boot_choice_name(BootChoice b) noexcept;
// "auto", "bios", "uefi" or "none".
[[nodiscard]] Result<BootChoice> parse_boot(std::string_view text);

struct NicChoice {
  enum class Kind { keep, mac, name, dhcp };
  Kind kind = Kind::keep;
  std::string value;  // the MAC (normalised) or the new name
};

struct PrepareOptions {
  bool enabled = true;
  BootChoice boot = BootChoice::automatic;
  NicChoice nic;
  std::string serial_tty = "ttyS0";
  // One line per step (appliance launch, each operation as it starts).
  std::function<void(const std::string& line)> report;
};

// The operations for `os` (inspected and probed), in order.
[[nodiscard]] Result<guest::OperationList> preparation_operations(const PrepareOptions& options,
                                                                  const guest::GuestOs& os);

// Launches an appliance over `disk`, inspects and mounts the system, runs the
// operations in `mode` (apply on the restored target; plan over the image
// read-only) and shuts the appliance down (write errors surface there).
// A report whose run failed is returned as the report (its error set).
[[nodiscard]] Result<guest::Report> prepare_system(const guest::DiskSpec& disk, const PrepareOptions& options,
                                                   guest::Mode mode);

}  // namespace utsushi::v2p
