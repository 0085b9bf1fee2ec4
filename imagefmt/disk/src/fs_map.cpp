#include "utsushi/disk/fs_map.h"

#include <algorithm>

#include "utsushi/common/cancel.h"
#include "utsushi/common/log.h"
#include "decode_util.h"

namespace utsushi::disk {
namespace {

constexpr int k_max_depth = 2;  // a PV inside an LV inside a PV is as deep as we go
constexpr std::size_t k_probe_bytes = 128 * 1024;

bool is_swap(std::span<const std::uint8_t> b) {
  for (std::size_t page : {4096u, 8192u, 16384u, 65536u}) {
    if (page <= b.size() && (bytes_equal(b, page - 10, "SWAPSPACE2") || bytes_equal(b, page - 10, "SWAP-SPACE") ||
                             bytes_equal(b, page - 10, "S1SUSPEND\0") || bytes_equal(b, page - 10, "S2SUSPEND\0") ||
                             bytes_equal(b, page - 10, "ULSUSPEND\0") || bytes_equal(b, page - 10, "LINHIB0001"))) {
      return true;
    }
  }
  return false;
}

// Errors that mean "this map cannot be trusted" rather than "the disk failed".
bool is_fallback_error(const Error& e) {
  return e.code() != Errc::io_error && e.code() != Errc::cancelled && e.code() != Errc::internal;
}

}  // namespace

[[nodiscard]] Result<std::string> probe_filesystem(Volume& volume) {
  std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(volume.size(), k_probe_bytes));
  auto b = UTSUSHI_TRY(volume.read(0, n, "probe"));
  std::span<const std::uint8_t> s(b);
  if (n >= 2048 && load_le16(s.data() + 1024 + 0x38) == 0xEF53) {
    return std::string("ext4");
  }
  if (n >= 512 && bytes_equal(s, 0, "XFSB")) {
    return std::string("xfs");
  }
  if (n >= 512 && bytes_equal(s, 3, "NTFS    ")) {
    return std::string("ntfs");
  }
  for (std::size_t sector = 0; sector < 4 && (sector + 1) * 512 <= n; ++sector) {
    if (bytes_equal(s, sector * 512, "LABELONE") && bytes_equal(s, sector * 512 + 24, "LVM2 001")) {
      return std::string("LVM2_member");
    }
  }
  if (n >= 0x10000 + 0x48 && bytes_equal(s, 0x10040, "_BHRfS_M")) {
    return std::string("btrfs");
  }
  if (is_swap(s)) {
    return std::string("swap");
  }
  // FAT last: its signature is weak (a boot sector with a plausible BPB).
  if (n >= 512 && s[510] == 0x55 && s[511] == 0xAA && (s[0] == 0xEB || s[0] == 0xE9)) {
    std::uint16_t bps = load_le16(s.data() + 11);
    std::uint8_t spc = s[13];
    bool pow2 = spc != 0 && (spc & (spc - 1)) == 0;
    if ((bps == 512 || bps == 1024 || bps == 2048 || bps == 4096) && pow2 && load_le16(s.data() + 14) != 0 && s[16] != 0 &&
        (bytes_equal(s, 54, "FAT") || bytes_equal(s, 82, "FAT32") || load_le16(s.data() + 22) != 0 || load_le32(s.data() + 36) != 0)) {
      return std::string("vfat");
    }
  }
  return std::string();
}

[[nodiscard]] Result<VolumeMap> map_volume(Volume& volume, int depth) {
  UTSUSHI_TRY(check_cancelled());
  VolumeMap m;
  m.name = volume.name();
  m.size = volume.size();
  m.disk_offset = volume.segments().empty() ? 0 : volume.segments().front().disk_offset;
  std::string fs = UTSUSHI_TRY(probe_filesystem(volume));
  m.filesystem = fs.empty() ? "unknown" : fs;

  Result<FsUsage> usage = fail(Errc::not_supported, "no used-block map for this content");
  if (fs == "ext4") {
    usage = map_ext(volume);
  } else if (fs == "xfs") {
    usage = map_xfs(volume);
  } else if (fs == "vfat") {
    usage = map_fat(volume);
  } else if (fs == "ntfs") {
    usage = map_ntfs(volume);
  } else if (fs == "swap") {
    usage = map_swap(volume);
  } else if (fs == "LVM2_member" && depth < k_max_depth) {
    usage = map_lvm(volume, depth);
  } else if (fs == "btrfs") {
    usage = fail(Errc::not_supported, "btrfs used-block maps are not implemented");
  }

  if (!usage) {
    if (!is_fallback_error(usage.error())) {
      return std::unexpected(std::move(usage).error());
    }
    m.full_copy = true;
    m.note = usage.error().message();
    if (!fs.empty()) {
      UTSUSHI_LOG_WARN("{} ({}): {}; copying the whole volume", m.name, fs, m.note);
    } else {
      UTSUSHI_LOG_INFO("{}: unknown content; copying the whole volume (zeros skipped)", m.name);
    }
    ByteRanges all;
    all.add(0, volume.size());
    m.used = volume.to_disk(all);
    return m;
  }
  FsUsage& u = *usage;
  m.filesystem = u.filesystem.empty() ? m.filesystem : u.filesystem;
  m.label = std::move(u.label);
  m.uuid = std::move(u.uuid);
  m.fs_used_bytes = u.fs_used_bytes;
  m.children = std::move(u.children);
  // Every decoder's ranges are clipped to the volume: a superset never spills
  // onto a neighbour.
  m.used = volume.to_disk(u.used.clipped(volume.size()));
  return m;
}

}  // namespace utsushi::disk
