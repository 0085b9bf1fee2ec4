#pragma once
// Used-block maps of volumes: which bytes of a partition (or LV) a capture
// must copy. One decoder per filesystem, each reading the filesystem's own
// allocation structures through a Volume:
//   ext2/3/4  block bitmaps via the group descriptors   (ext4_map.cpp)
//   XFS       free-space B+trees per AG and the AGFL     (xfs_map.cpp)
//   FAT12/16/32  reserved area, FATs, root dir, clusters in use (fat_map.cpp)
//   NTFS      $Bitmap                                     (ntfs_map.cpp)
//   swap      the header page                             (swap_map.cpp)
//   LVM2 PV   metadata area + each LV mapped recursively  (lvm_map.cpp)
// Contract of every decoder: the returned ranges are a superset of the bytes
// the filesystem uses (never omit a used block); a filesystem that is dirty,
// whose checksums fail, or whose map disagrees with its own free counters is
// reported as an error (Errc::corruption / failed_precondition /
// not_supported), which map_volume() turns into a full copy with a warning.

#include <cstdint>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/disk/byte_ranges.h"
#include "utsushi/disk/volume.h"

namespace utsushi::disk {

struct VolumeMap;

// What a decoder returns: ranges relative to the volume.
struct FsUsage {
  std::string filesystem;  // "ext4", "xfs", "vfat", "ntfs", "swap", "LVM2_member"
  std::string label;
  std::string uuid;
  ByteRanges used;
  std::uint64_t fs_used_bytes = 0;  // what the filesystem itself counts as used (for reports)
  std::vector<VolumeMap> children;  // LVs of a PV (their ranges are already in `used`)
};

struct VolumeMap {
  std::string name;             // "p2", "p6/vg/lv"
  std::string filesystem;       // as FsUsage, or "unknown", "btrfs" (not mapped)...
  std::string label;
  std::string uuid;
  std::uint64_t disk_offset = 0;  // first segment's disk offset
  std::uint64_t size = 0;
  bool full_copy = false;
  std::string note;               // why the whole volume is copied (empty otherwise)
  ByteRanges used;                // disk offsets
  std::uint64_t fs_used_bytes = 0;
  std::vector<VolumeMap> children;
};

// Recognises the filesystem on `volume` from its first bytes: one of the names
// above, "btrfs", or "" when unknown.
[[nodiscard]] Result<std::string> probe_filesystem(Volume& volume);

// Maps one volume. Never fails for a damaged or unsupported filesystem (that
// becomes a full copy, logged as a warning and recorded in `note`); fails
// only on I/O errors and cancellation. `depth` bounds LVM-in-LVM recursion.
[[nodiscard]] Result<VolumeMap> map_volume(Volume& volume, int depth = 0);

// The decoders; `volume` starts at the filesystem's first byte.
[[nodiscard]] Result<FsUsage> map_ext(Volume& volume);
[[nodiscard]] Result<FsUsage> map_xfs(Volume& volume);
[[nodiscard]] Result<FsUsage> map_fat(Volume& volume);
[[nodiscard]] Result<FsUsage> map_ntfs(Volume& volume);
[[nodiscard]] Result<FsUsage> map_swap(Volume& volume);
[[nodiscard]] Result<FsUsage> map_lvm(Volume& volume, int depth);

}  // namespace utsushi::disk
