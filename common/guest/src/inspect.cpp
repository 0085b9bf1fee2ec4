#include "utsushi/guest/inspect.h"

#include <guestfs.h>

#include <algorithm>
#include <cctype>

#include <fmt/core.h>

#include "boot_sector.h"
#include "c_strings.h"

#include <fmt/ranges.h>
#include "utsushi/common/log.h"
#include "utsushi/guest/network_config.h"

namespace utsushi::guest {

using detail::take_list;
using detail::take_string;

namespace {

Result<std::string> no_os_reason(Session& s) {
  std::vector<std::string> kv = take_list(guestfs_list_filesystems(s.handle()));
  std::string found;
  for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
    if (kv[i + 1] == "unknown") {
      continue;
    }
    found += (found.empty() ? "" : ", ") + kv[i] + " " + kv[i + 1];
  }
  return "no operating system found on the disks (" + (found.empty() ? "no filesystems" : "filesystems: " + found) +
         ")";
}

// Reads one inspection string; "" when libguestfs has none ("unknown").
std::string inspect_string(guestfs_h* g, char* (*fn)(guestfs_h*, const char*), const std::string& root) {
  std::string v = take_string(fn(g, root.c_str()));
  return v == "unknown" ? std::string() : v;
}

Result<std::string> first_existing(Session& s, std::initializer_list<std::string_view> paths) {
  for (std::string_view p : paths) {
    if (UTSUSHI_TRY(s.exists(std::string(p)))) {
      return std::string(p);
    }
  }
  return std::string();
}

Result<void> probe_kernels(Session& s, GuestOs& os) {
  std::string modules = UTSUSHI_TRY(first_existing(s, {"/lib/modules", "/usr/lib/modules"}));
  if (modules.empty()) {
    return {};
  }
  for (const std::string& v : UTSUSHI_TRY(s.ls(modules))) {
    if (UTSUSHI_TRY(s.exists("/boot/vmlinuz-" + v)) || UTSUSHI_TRY(s.exists("/boot/vmlinux-" + v))) {
      os.kernels.push_back(v);
    }
  }
  std::sort(os.kernels.begin(), os.kernels.end(), [](const std::string& a, const std::string& b) {
    return version_less(a, b);
  });
  return {};
}

Result<void> probe_initramfs_tool(Session& s, GuestOs& os) {
  bool itools = !UTSUSHI_TRY(first_existing(s, {"/usr/sbin/update-initramfs", "/sbin/update-initramfs"})).empty() &&
                UTSUSHI_TRY(s.is_dir("/etc/initramfs-tools"));
  bool dracut = !UTSUSHI_TRY(first_existing(s, {"/usr/bin/dracut", "/usr/sbin/dracut", "/sbin/dracut"})).empty();
  bool other = !UTSUSHI_TRY(first_existing(s, {"/usr/bin/mkinitcpio", "/sbin/mkinitrd", "/usr/sbin/mkinitrd"})).empty();
  os.initramfs = itools   ? InitramfsTool::initramfs_tools
                 : dracut ? InitramfsTool::dracut
                 : other  ? InitramfsTool::other
                          : InitramfsTool::none;
  return {};
}

Result<void> probe_boot_loader(Session& s, GuestOs& os) {
  BootLoader& b = os.boot_loader;
  b.config = UTSUSHI_TRY(first_existing(s, {"/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"}));
  if (b.config.empty()) {
    std::vector<std::string> efi = UTSUSHI_TRY(s.glob("/boot/efi/EFI/*/grub.cfg"));
    if (!efi.empty()) {
      b.config = efi.front();
    }
  }
  if (!UTSUSHI_TRY(first_existing(s, {"/usr/sbin/update-grub", "/sbin/update-grub"})).empty()) {
    b.mkconfig = "update-grub";
  } else if (!UTSUSHI_TRY(first_existing(s, {"/usr/sbin/grub2-mkconfig", "/sbin/grub2-mkconfig"})).empty()) {
    b.mkconfig = "grub2-mkconfig";
  } else if (!UTSUSHI_TRY(first_existing(s, {"/usr/sbin/grub-mkconfig", "/sbin/grub-mkconfig"})).empty()) {
    b.mkconfig = "grub-mkconfig";
  }
  if (!UTSUSHI_TRY(first_existing(s, {"/usr/sbin/grub-install", "/sbin/grub-install"})).empty()) {
    b.install = "grub-install";
  } else if (!UTSUSHI_TRY(first_existing(s, {"/usr/sbin/grub2-install", "/sbin/grub2-install"})).empty()) {
    b.install = "grub2-install";
  }
  b.bls = !UTSUSHI_TRY(s.glob("/boot/loader/entries/*.conf")).empty();
  if (!b.config.empty() || !b.mkconfig.empty()) {
    b.kind = BootLoaderKind::grub2;
  } else if (!UTSUSHI_TRY(first_existing(s, {"/boot/extlinux", "/boot/syslinux", "/etc/lilo.conf"})).empty()) {
    b.kind = BootLoaderKind::other;
  }
  return {};
}

// The session disk holding `device`, or disk 0 when it is not a partition or disk.
Result<std::string> disk_of(Session& s, const std::string& device) {
  for (std::size_t i = 0; i < s.disk_count(); ++i) {
    if (UTSUSHI_TRY(s.disk_device(i)) == device) {
      return device;
    }
  }
  std::vector<std::string> parts = UTSUSHI_TRY(s.list_partitions());
  if (std::find(parts.begin(), parts.end(), device) != parts.end()) {
    return s.partition_disk(device);
  }
  return s.disk_device(0);
}

// libguestfs resolves fstab's UUID= and LABEL= to the first filesystem that
// carries it, which for clones sharing a golden's filesystems may lie on
// another clone's disk. With the root known, a partition resolved onto another
// disk is taken from the root's disk instead (same partition number); the
// root itself is always `root`.
Result<std::string> on_root_disk(Session& s, const std::string& root, const std::string& device) {
  if (device == root) {
    return device;
  }
  std::vector<std::string> parts = UTSUSHI_TRY(s.list_partitions());
  if (std::find(parts.begin(), parts.end(), device) == parts.end() ||
      std::find(parts.begin(), parts.end(), root) == parts.end()) {
    return device;  // a logical volume or whole disk: not tied to one disk by name
  }
  std::string disk = UTSUSHI_TRY(s.partition_disk(device));
  std::string root_disk = UTSUSHI_TRY(s.partition_disk(root));
  if (disk == root_disk) {
    return device;
  }
  std::string same = root_disk + device.substr(disk.size());
  if (std::find(parts.begin(), parts.end(), same) == parts.end()) {
    return device;
  }
  return same;
}

// The session disks holding this guest's filesystems (all disks when one is
// on LVM or MD, which may span several).
Result<std::vector<std::string>> guest_disks(Session& s, const GuestOs& os) {
  std::vector<std::string> parts = UTSUSHI_TRY(s.list_partitions());
  std::vector<std::string> disks;
  for (const MountPoint& m : os.mounts) {
    if (std::find(parts.begin(), parts.end(), m.device) == parts.end()) {
      disks.clear();
      for (std::size_t i = 0; i < s.disk_count(); ++i) {
        disks.push_back(UTSUSHI_TRY(s.disk_device(i)));
      }
      return disks;
    }
    std::string disk = UTSUSHI_TRY(s.partition_disk(m.device));
    if (std::find(disks.begin(), disks.end(), disk) == disks.end()) {
      disks.push_back(disk);
    }
  }
  return disks;
}

Result<void> probe_firmware(Session& s, GuestOs& os) {
  std::vector<std::string> disks = UTSUSHI_TRY(guest_disks(s, os));
  std::vector<std::string> esps;
  for (const std::string& p : UTSUSHI_TRY(s.list_partitions())) {
    if (std::find(disks.begin(), disks.end(), UTSUSHI_TRY(s.partition_disk(p))) == disks.end()) {
      continue;
    }
    std::string type = UTSUSHI_TRY(s.partition_type(p));
    if (type == detail::k_esp_gpt_type || type == detail::k_esp_mbr_type) {
      esps.push_back(p);
    }
  }
  for (const MountPoint& m : os.mounts) {
    if (std::find(esps.begin(), esps.end(), m.device) != esps.end()) {
      os.esp = m.device;
      os.esp_mountpoint = m.mountpoint;
    }
  }
  if (!os.esp.empty()) {
    os.firmware = Firmware::uefi;
    return {};
  }
  std::string boot_disk = UTSUSHI_TRY(disk_of(s, os.boot_device()));
  auto sector = UTSUSHI_TRY(s.pread_device(boot_disk, detail::k_sector, 0));
  if (!esps.empty() && !detail::mbr_has_boot_code(sector)) {
    os.esp = esps.front();
    os.firmware = Firmware::uefi;
  } else {
    os.firmware = Firmware::bios;
  }
  return {};
}

Result<void> add_network_files(Session& s, GuestOs& os, NetworkSystem system, const std::string& pattern) {
  for (const std::string& path : UTSUSHI_TRY(s.glob(pattern))) {
    if (!UTSUSHI_TRY(s.is_file(path))) {
      continue;
    }
    std::string text = UTSUSHI_TRY(s.read_file(path));
    std::vector<std::string> names = interfaces_of(system, text);
    bool meaningful = !names.empty() || (system != NetworkSystem::ifupdown && system != NetworkSystem::udev_rules);
    if (meaningful) {
      os.network.push_back(NetworkConfig{system, path, std::move(names)});
    }
  }
  return {};
}

Result<void> probe_network(Session& s, GuestOs& os) {
  UTSUSHI_TRY(add_network_files(s, os, NetworkSystem::ifupdown, "/etc/network/interfaces"));
  UTSUSHI_TRY(add_network_files(s, os, NetworkSystem::ifupdown, "/etc/network/interfaces.d/*"));
  UTSUSHI_TRY(add_network_files(s, os, NetworkSystem::networkd, "/etc/systemd/network/*.network"));
  UTSUSHI_TRY(add_network_files(s, os, NetworkSystem::networkd, "/etc/systemd/network/*.link"));
  UTSUSHI_TRY(add_network_files(s, os, NetworkSystem::networkmanager, "/etc/NetworkManager/system-connections/*"));
  UTSUSHI_TRY(add_network_files(s, os, NetworkSystem::netplan, "/etc/netplan/*.yaml"));
  UTSUSHI_TRY(add_network_files(s, os, NetworkSystem::udev_rules, "/etc/udev/rules.d/*.rules"));
  return {};
}

std::string mount_options(const std::string& fstype, MountMode mode, bool clones) {
  std::vector<std::string> opts;
  if (mode == MountMode::read_only) {
    opts.emplace_back("ro");
  }
  if (clones && fstype == "xfs") {
    opts.emplace_back("nouuid");  // clones share the XFS UUID; the kernel refuses a second mount without it
  }
  std::string out;
  for (const std::string& o : opts) {
    out += (out.empty() ? "" : ",") + o;
  }
  return out;
}

}  // namespace

Result<GuestOs> inspect(Session& session, const InspectOptions& options) {
  guestfs_h* g = session.handle();
  std::vector<std::string> roots = UTSUSHI_TRY(session.inspection_roots());
  if (options.root_disk) {
    std::string disk = UTSUSHI_TRY(session.disk_device(*options.root_disk));
    std::vector<std::string> on_disk;
    for (const std::string& r : roots) {
      if (UTSUSHI_TRY(disk_of(session, r)) == disk) {  // (a root on LVM counts as on disk 0)
        on_disk.push_back(r);
      }
    }
    if (on_disk.empty()) {
      return fail(Errc::not_supported, fmt::format("no operating system found on disk {} ({})", *options.root_disk, disk));
    }
    roots = std::move(on_disk);
  }
  if (roots.empty()) {
    return fail(Errc::not_supported, UTSUSHI_TRY(no_os_reason(session)));
  }
  if (roots.size() > 1) {
    return fail(Errc::not_supported, fmt::format("{} operating systems found (roots {}); one is supported",
                                                 roots.size(), fmt::join(roots, ", ")));
  }
  GuestOs os;
  os.root = roots.front();
  os.type = inspect_string(g, guestfs_inspect_get_type, os.root);
  os.product_name = inspect_string(g, guestfs_inspect_get_product_name, os.root);
  if (os.type != "linux") {
    return fail(Errc::not_supported,
                fmt::format("the operating system on {} is {}{}, not Linux", os.root,
                            os.type.empty() ? "unknown" : os.type,
                            os.product_name.empty() ? "" : " (" + os.product_name + ")"));
  }
  os.distro = inspect_string(g, guestfs_inspect_get_distro, os.root);
  os.arch = inspect_string(g, guestfs_inspect_get_arch, os.root);
  os.package_format = inspect_string(g, guestfs_inspect_get_package_format, os.root);
  os.package_manager = inspect_string(g, guestfs_inspect_get_package_management, os.root);
  os.hostname = inspect_string(g, guestfs_inspect_get_hostname, os.root);
  os.major_version = std::max(0, guestfs_inspect_get_major_version(g, os.root.c_str()));
  os.minor_version = std::max(0, guestfs_inspect_get_minor_version(g, os.root.c_str()));
  char** mps_c = guestfs_inspect_get_mountpoints(g, os.root.c_str());
  if (mps_c == nullptr) {
    return std::unexpected(session.error("reading the guest's mount points"));
  }
  std::vector<std::string> mps = take_list(mps_c);
  for (std::size_t i = 0; i + 1 < mps.size(); i += 2) {
    std::string device = mps[i + 1];
    if (options.root_disk) {
      device = UTSUSHI_TRY(on_root_disk(session, os.root, device));
    }
    os.mounts.push_back(MountPoint{mps[i], device, UTSUSHI_TRY(session.vfs_type(device))});
  }
  std::sort(os.mounts.begin(), os.mounts.end(), [](const MountPoint& a, const MountPoint& b) {
    return a.mountpoint.size() != b.mountpoint.size() ? a.mountpoint.size() < b.mountpoint.size()
                                                      : a.mountpoint < b.mountpoint;
  });
  UTSUSHI_LOG_INFO("found {} on {}", os.product_name.empty() ? os.distro : os.product_name, os.root);
  return os;
}

Result<void> mount_guest(Session& session, const GuestOs& os, MountMode mode) {
  UTSUSHI_TRY(session.umount_all());
  for (const MountPoint& m : os.mounts) {
    UTSUSHI_TRY(session.mount(m.device, m.mountpoint, mount_options(m.fstype, mode, false)));
  }
  return {};
}

Result<void> probe_guest(Session& session, GuestOs& os) {
  os.kernels.clear();
  os.network.clear();
  os.boot_loader = {};
  os.systemd = !UTSUSHI_TRY(first_existing(session, {"/lib/systemd/systemd", "/usr/lib/systemd/systemd"})).empty();
  os.link_files = !UTSUSHI_TRY(first_existing(session, {"/lib/systemd/network/99-default.link",
                                                        "/usr/lib/systemd/network/99-default.link"}))
                       .empty();
  UTSUSHI_TRY(probe_kernels(session, os));
  UTSUSHI_TRY(probe_initramfs_tool(session, os));
  UTSUSHI_TRY(probe_boot_loader(session, os));
  UTSUSHI_TRY(probe_firmware(session, os));
  UTSUSHI_TRY(probe_network(session, os));
  return {};
}

Result<MountLayout> layout_of(Session& session, const GuestOs& os, std::size_t first_disk) {
  MountLayout layout;
  std::vector<std::string> parts = UTSUSHI_TRY(session.list_partitions());
  for (const MountPoint& m : os.mounts) {
    LayoutEntry e;
    e.mountpoint = m.mountpoint;
    e.fstype = m.fstype;
    std::string disk = m.device;
    if (std::find(parts.begin(), parts.end(), m.device) != parts.end()) {
      disk = UTSUSHI_TRY(session.partition_disk(m.device));
      e.partition = UTSUSHI_TRY(session.partition_number(m.device));
    } else if (int lv = guestfs_is_lv(session.handle(), m.device.c_str()); lv == 1) {
      std::string canonical = take_string(guestfs_lvm_canonical_lv_name(session.handle(), m.device.c_str()));
      e.lv = canonical.starts_with("/dev/") ? canonical.substr(5) : canonical;
      layout.entries.push_back(std::move(e));
      continue;
    }
    bool found = false;
    for (std::size_t i = first_disk; i < session.disk_count(); ++i) {
      if (UTSUSHI_TRY(session.disk_device(i)) == disk) {
        e.disk = i - first_disk;
        found = true;
      }
    }
    if (!found) {
      return fail(Errc::not_supported, "mount layout: " + m.mountpoint + " is on " + m.device +
                                           ", which is neither a partition, a disk nor a logical volume");
    }
    layout.entries.push_back(std::move(e));
  }
  return layout;
}

Result<void> mount_layout(Session& session, const MountLayout& layout, std::size_t first_disk,
                          std::size_t disk_count, MountMode mode) {
  UTSUSHI_TRY(session.umount_all());
  std::vector<std::string> disks;
  for (std::size_t i = first_disk; i < first_disk + disk_count; ++i) {
    disks.push_back(UTSUSHI_TRY(session.disk_device(i)));
  }
  bool lvm = std::any_of(layout.entries.begin(), layout.entries.end(), [](const LayoutEntry& e) { return !e.lv.empty(); });
  if (lvm) {
    // Only this guest's PVs: clones share VG names and UUIDs.
    UTSUSHI_TRY(session.vg_activate_all(false));
    std::vector<std::string> filter = disks;
    for (const std::string& p : UTSUSHI_TRY(session.list_partitions())) {
      if (std::find(disks.begin(), disks.end(), UTSUSHI_TRY(session.partition_disk(p))) != disks.end()) {
        filter.push_back(p);
      }
    }
    UTSUSHI_TRY(session.lvm_set_filter(filter));
    UTSUSHI_TRY(session.vg_activate_all(true));
  }
  for (const LayoutEntry& e : layout.entries) {
    std::string device;
    if (!e.lv.empty()) {
      device = "/dev/" + e.lv;
    } else if (e.disk < disks.size()) {
      device = disks[e.disk] + (e.partition > 0 ? std::to_string(e.partition) : "");
    } else {
      return fail(Errc::invalid_argument, fmt::format("mount layout names disk {} of a {}-disk guest", e.disk,
                                                      disks.size()));
    }
    UTSUSHI_TRY(session.mount(device, e.mountpoint, mount_options(e.fstype, mode, true)));
  }
  return {};
}

}  // namespace utsushi::guest
