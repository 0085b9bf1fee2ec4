#pragma once
// Device names as a guest's configuration writes them, and the stable names
// that replace those tied to the hardware's bus.
//
// A physical server's fstab, crypttab, resume setting and boot loader may name
// /dev/sda2, /dev/hdb1, /dev/cciss/c0d0p2 or /dev/nvme0n1p2; in a VM (virtio:
// /dev/vda2) or on other hardware those names change, so they are rewritten
// to UUID=. Names that do not depend on the bus are kept: UUID=, LABEL=,
// PARTUUID=, LVM (/dev/mapper/VG-LV, /dev/VG/LV) and MD (/dev/md*).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi::guest {

class Session;

// A disk (0-based, in the machine's disk order) and a partition (1-based; 0 = the whole disk).
struct DiskPartRef {
  std::size_t disk = 0;
  int partition = 0;
  bool operator==(const DiskPartRef&) const = default;
};

// Parses a bus-specific device path: /dev/sdX[N], /dev/hdX[N], /dev/vdX[N],
// /dev/xvdX[N] (X = a..z, aa..zz), /dev/nvmeCnNS[pP], /dev/cciss/cCdD[pP],
// /dev/ida/..., /dev/mmcblkNpP. nullopt for anything else.
std::optional<DiskPartRef> parse_disk_path(std::string_view path);

// /dev/disk/by-id/NAME[-partN] and /dev/disk/by-path/NAME[-partN]: names made of
// hardware serials or bus addresses, which a VM does not have. Returns the
// partition (0 = whole disk); the disk is unknown.
std::optional<int> parse_hardware_link(std::string_view path);

// One block device of the session with a filesystem or swap.
struct DeviceInfo {
  std::string device;                // appliance device: "/dev/sda2", "/dev/vg0/root"
  std::vector<std::string> aliases;  // other names of it: "/dev/mapper/vg0-root"
  std::optional<DiskPartRef> position;  // partitions and whole disks; nullopt for LVM/MD
  std::string fstype;
  std::string uuid;
  std::string label;
  std::string partuuid;
};

class DeviceMap {
 public:
  // Every partition, whole disk and logical volume of the session with its
  // blkid tags (filesystem type, UUID, label, PARTUUID).
  [[nodiscard]] static Result<DeviceMap> scan(Session& session);
  DeviceMap(std::vector<DeviceInfo> devices, std::size_t disk_count);

  // The replacement for a bus-tied name: "UUID=..." of the filesystem (or swap)
  // it names. nullopt when the name is not bus-tied, not on a captured disk, or
  // its device has no UUID.
  std::optional<std::string> stable_spec(std::string_view guest_path) const;
  // The device a fstab-style spec names (UUID=, LABEL=, PARTUUID=, a path),
  // nullptr when nothing in the session matches.
  const DeviceInfo* find(std::string_view spec) const;
  // Whether the spec names something that can be judged: a bus-tied path, a
  // tag, or an LVM/MD name (false for "none", "tmpfs", "host:/export"...).
  static bool names_a_block_device(std::string_view spec);

  std::size_t disk_count() const noexcept { return m_disk_count; }
  const std::vector<DeviceInfo>& devices() const noexcept { return m_devices; }

 private:
  const DeviceInfo* at(DiskPartRef ref) const;
  std::vector<DeviceInfo> m_devices;
  std::size_t m_disk_count;
};

}  // namespace utsushi::guest
