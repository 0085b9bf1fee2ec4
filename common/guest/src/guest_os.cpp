#include "utsushi/guest/guest_os.h"

#include <algorithm>

namespace utsushi::guest {

std::string_view firmware_name(Firmware f) noexcept {
  switch (f) {
    case Firmware::bios: return "bios";
    case Firmware::uefi: return "uefi";
    case Firmware::unknown: break;
  }
  return "unknown";
}

std::string_view initramfs_tool_name(InitramfsTool t) noexcept {
  switch (t) {
    case InitramfsTool::initramfs_tools: return "initramfs-tools";
    case InitramfsTool::dracut: return "dracut";
    case InitramfsTool::other: return "other";
    case InitramfsTool::none: break;
  }
  return "none";
}

std::string_view network_system_name(NetworkSystem s) noexcept {
  switch (s) {
    case NetworkSystem::ifupdown: return "ifupdown";
    case NetworkSystem::networkd: return "systemd-networkd";
    case NetworkSystem::networkmanager: return "NetworkManager";
    case NetworkSystem::netplan: return "netplan";
    case NetworkSystem::udev_rules: return "udev-rules";
  }
  return "unknown";
}

std::string GuestOs::mount_device(std::string_view mountpoint) const {
  auto it = std::find_if(mounts.begin(), mounts.end(), [&](const MountPoint& m) { return m.mountpoint == mountpoint; });
  return it == mounts.end() ? std::string() : it->device;
}

std::string GuestOs::boot_device() const {
  std::string boot = mount_device("/boot");
  return boot.empty() ? mount_device("/") : boot;
}

bool GuestOs::has_network_system(NetworkSystem s) const {
  return std::any_of(network.begin(), network.end(), [&](const NetworkConfig& c) { return c.system == s; });
}

bool version_less(std::string_view a, std::string_view b) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      std::size_t i2 = i, j2 = j;
      while (i2 < a.size() && digit(a[i2])) {
        ++i2;
      }
      while (j2 < b.size() && digit(b[j2])) {
        ++j2;
      }
      std::string_view x = a.substr(i, i2 - i), y = b.substr(j, j2 - j);
      while (x.size() > 1 && x.front() == '0') {
        x.remove_prefix(1);
      }
      while (y.size() > 1 && y.front() == '0') {
        y.remove_prefix(1);
      }
      if (x.size() != y.size()) {
        return x.size() < y.size();
      }
      if (x != y) {
        return x < y;
      }
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) {
        return a[i] < b[j];
      }
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

nlohmann::json to_json(const GuestOs& os) {
  nlohmann::json mounts = nlohmann::json::array();
  for (const MountPoint& m : os.mounts) {
    mounts.push_back({{"mountpoint", m.mountpoint}, {"device", m.device}, {"fstype", m.fstype}});
  }
  nlohmann::json network = nlohmann::json::array();
  for (const NetworkConfig& c : os.network) {
    network.push_back({{"system", std::string(network_system_name(c.system))},
                       {"path", c.path},
                       {"interfaces", c.interfaces}});
  }
  return {{"root", os.root},
          {"type", os.type},
          {"distro", os.distro},
          {"product-name", os.product_name},
          {"version", std::to_string(os.major_version) + "." + std::to_string(os.minor_version)},
          {"arch", os.arch},
          {"package-format", os.package_format},
          {"package-manager", os.package_manager},
          {"hostname", os.hostname},
          {"mounts", mounts},
          {"kernels", os.kernels},
          {"initramfs-tool", std::string(initramfs_tool_name(os.initramfs))},
          {"boot-loader",
           {{"kind", os.boot_loader.kind == BootLoaderKind::grub2   ? "grub2"
                     : os.boot_loader.kind == BootLoaderKind::other ? "other"
                                                                    : "none"},
            {"config", os.boot_loader.config},
            {"mkconfig", os.boot_loader.mkconfig},
            {"install", os.boot_loader.install},
            {"bls", os.boot_loader.bls}}},
          {"firmware", std::string(firmware_name(os.firmware))},
          {"esp", os.esp},
          {"systemd", os.systemd},
          {"network", network}};
}

}  // namespace utsushi::guest
