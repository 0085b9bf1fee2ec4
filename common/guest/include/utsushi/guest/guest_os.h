#pragma once
// What inspection found in a guest: the operating system, where its
// filesystems are mounted, and the tools and configuration that conversion
// (p2v), bare-metal preparation (v2p) and identity operations (clone) depend
// on. Plain data with a JSON encoder for reports.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace utsushi::guest {

enum class Firmware { unknown, bios, uefi };
enum class InitramfsTool { none, initramfs_tools, dracut, other };
enum class BootLoaderKind { none, grub2, other };
// The network configuration systems a guest can bind to NIC names.
enum class NetworkSystem { ifupdown, networkd, networkmanager, netplan, udev_rules };

std::string_view firmware_name(Firmware f) noexcept;
std::string_view initramfs_tool_name(InitramfsTool t) noexcept;
std::string_view network_system_name(NetworkSystem s) noexcept;

// One filesystem of the guest, mounted at `mountpoint` (from its fstab).
struct MountPoint {
  std::string mountpoint;  // "/", "/boot", "/boot/efi"
  std::string device;      // appliance device: "/dev/sda2", "/dev/vg0/root", "/dev/md0"
  std::string fstype;      // "ext4", "xfs", "vfat", ...
};

struct BootLoader {
  BootLoaderKind kind = BootLoaderKind::none;
  std::string config;    // "/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", ... ("" when none)
  std::string mkconfig;  // the guest's generator: "update-grub", "grub2-mkconfig", "grub-mkconfig"; "" = config file only
  std::string install;   // "grub-install" / "grub2-install" when present, else ""
  bool bls = false;      // kernel entries in /boot/loader/entries (BootLoaderSpec)
  bool has_tools() const noexcept { return !mkconfig.empty(); }
};

// A network configuration file that names interfaces.
struct NetworkConfig {
  NetworkSystem system;
  std::string path;                     // guest path of the file
  std::vector<std::string> interfaces;  // literal interface names it binds to (no globs, no "lo")
};

struct GuestOs {
  std::string root;            // appliance device of the root filesystem
  std::string type;            // libguestfs: "linux", "windows", ...
  std::string distro;          // "debian", "ubuntu", "rhel", "fedora", ...
  std::string product_name;    // "Debian GNU/Linux 12 (bookworm)"
  int major_version = 0;
  int minor_version = 0;
  std::string arch;            // "x86_64"
  std::string package_format;  // "deb", "rpm"
  std::string package_manager; // "apt", "dnf", "yum"
  std::string hostname;
  std::vector<MountPoint> mounts;  // sorted so that parents come first ("/" before "/boot")

  // Filled by probe_guest() once the guest is mounted:
  std::vector<std::string> kernels;  // versions with /boot/vmlinuz-V and /lib/modules/V, newest last
  InitramfsTool initramfs = InitramfsTool::none;
  BootLoader boot_loader;
  Firmware firmware = Firmware::unknown;
  std::string esp;             // appliance device of the EFI system partition ("" when none)
  std::string esp_mountpoint;  // "/boot/efi" when mounted from fstab, else ""
  bool systemd = false;        // /lib/systemd/systemd present
  bool link_files = false;     // udev applies systemd .link files (systemd-udevd >= 209)
  std::vector<NetworkConfig> network;

  // The appliance device mounted at `mountpoint` ("" when none).
  std::string mount_device(std::string_view mountpoint) const;
  // The device holding the kernels: that of "/boot", else of "/".
  std::string boot_device() const;
  bool has_network_system(NetworkSystem s) const;
};

nlohmann::json to_json(const GuestOs& os);

// Orders version strings as `sort -V` does: digit runs by value, the rest by
// character ("6.1.0-9-amd64" < "6.1.0-10-amd64").
bool version_less(std::string_view a, std::string_view b);

}  // namespace utsushi::guest
