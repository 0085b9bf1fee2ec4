// FAT12/16/32 used-block map: the reserved area, every FAT copy, the root
// directory region (FAT12/16) and each cluster whose FAT entry is non-zero.
// Layout: Microsoft "FAT: General Overview of On-Disk Format" 1.03 (the FAT
// specification): BPB offsets (section 3), the cluster-count rule for the FAT
// type (4085 / 65525), the FAT[1] clean-shutdown and hard-error bits, and the
// FSInfo sector (section 5). Linux's msdos driver also records a dirty flag
// in the boot sector state byte (BS_Reserved1 / BS_Reserved1 of FAT32).
// Checks: BPB geometry against the volume, dirty/error bits, FAT[0] media
// byte, and (FAT32) the FSInfo free count when it is valid.
#include <fmt/core.h>

#include "utsushi/common/cancel.h"
#include "decode_util.h"
#include "utsushi/disk/fs_map.h"

namespace utsushi::disk {
namespace {

constexpr std::size_t bpb_bytes_per_sec = 11, bpb_sec_per_clus = 13, bpb_rsvd_sec_cnt = 14, bpb_num_fats = 16,
                      bpb_root_ent_cnt = 17, bpb_tot_sec16 = 19, bpb_media = 21, bpb_fat_sz16 = 22,
                      bpb_tot_sec32 = 32, bpb_fat_sz32 = 36, bpb_ext_flags = 40, bpb_fs_info = 48;
constexpr std::size_t bs16_state = 37, bs32_state = 65, bs16_vol_id = 39, bs32_vol_id = 67, bs16_label = 43,
                      bs32_label = 71;
constexpr std::uint8_t k_state_dirty = 0x01;
constexpr std::uint32_t k_fat12_limit = 4085, k_fat16_limit = 65525;
constexpr std::uint32_t k_fsinfo_lead = 0x41615252, k_fsinfo_struc = 0x61417272;
constexpr std::size_t fsi_struc_sig = 484, fsi_free_count = 488;
constexpr std::uint16_t k_fat16_clean = 0x8000, k_fat16_no_error = 0x4000;
constexpr std::uint32_t k_fat32_clean = 0x08000000, k_fat32_no_error = 0x04000000;
static_assert(bs32_label + 11 <= 510 && fsi_free_count + 4 <= 512, "BPB fields and FSInfo fields lie in one sector");

}  // namespace

[[nodiscard]] Result<FsUsage> map_fat(Volume& volume) {
  auto bsb = UTSUSHI_TRY(volume.read(0, 512, "FAT boot sector"));
  std::span<const std::uint8_t> bs(bsb);
  const std::uint32_t bps = load_le16(bs.data() + bpb_bytes_per_sec);
  const std::uint32_t spc = bs[bpb_sec_per_clus];
  const std::uint32_t rsvd = load_le16(bs.data() + bpb_rsvd_sec_cnt);
  const std::uint32_t nfats = bs[bpb_num_fats];
  const std::uint32_t root_ents = load_le16(bs.data() + bpb_root_ent_cnt);
  const std::uint64_t fatsz = load_le16(bs.data() + bpb_fat_sz16) ? load_le16(bs.data() + bpb_fat_sz16) : load_le32(bs.data() + bpb_fat_sz32);
  const std::uint64_t totsec = load_le16(bs.data() + bpb_tot_sec16) ? load_le16(bs.data() + bpb_tot_sec16) : load_le32(bs.data() + bpb_tot_sec32);
  if (bps < 512 || bps > 4096 || (bps & (bps - 1)) || spc == 0 || (spc & (spc - 1)) || rsvd == 0 || nfats == 0 ||
      fatsz == 0 || totsec == 0) {
    return fail(Errc::corruption, "FAT: bad BIOS parameter block");
  }
  const std::uint64_t root_secs = (static_cast<std::uint64_t>(root_ents) * 32 + bps - 1) / bps;
  const std::uint64_t meta_secs = rsvd + nfats * fatsz + root_secs;
  if (totsec * bps > volume.size() || meta_secs >= totsec) {
    return fail(Errc::corruption, "FAT: filesystem does not fit its volume");
  }
  const std::uint64_t clusters = (totsec - meta_secs) / spc;
  const int bits = clusters < k_fat12_limit ? 12 : clusters < k_fat16_limit ? 16 : 32;
  if (bits == 32 && root_ents != 0) {
    return fail(Errc::corruption, "FAT32 with a fixed root directory");
  }
  if (fatsz * bps * 8 < (clusters + 2) * static_cast<std::uint64_t>(bits)) {
    return fail(Errc::corruption, "FAT: the FAT is too small for the cluster count");
  }
  FsUsage u;
  u.filesystem = "vfat";
  const std::uint32_t volume_id = load_le32(bs.data() + (bits == 32 ? bs32_vol_id : bs16_vol_id));
  u.uuid = fmt::format("{:04X}-{:04X}", volume_id >> 16, volume_id & 0xFFFF);
  u.label = text_field(bs, bits == 32 ? bs32_label : bs16_label, 11);
  if (bs[bits == 32 ? bs32_state : bs16_state] & k_state_dirty) {
    return fail(Errc::failed_precondition, "FAT: volume is marked dirty (not cleanly unmounted)");
  }
  // The active FAT: the first unless FAT32 mirroring is off (BPB_ExtFlags bit 7).
  std::uint64_t active = 0;
  if (bits == 32 && (load_le16(bs.data() + bpb_ext_flags) & 0x80)) {
    active = load_le16(bs.data() + bpb_ext_flags) & 0xF;
    if (active >= nfats) {
      return fail(Errc::corruption, "FAT: active FAT index out of range");
    }
  }
  auto fat = UTSUSHI_TRY(volume.read((rsvd + active * fatsz) * bps, static_cast<std::size_t>(fatsz * bps), "FAT"));
  std::span<const std::uint8_t> f(fat);
  auto entry = [&](std::uint64_t n) -> std::uint32_t {
    if (bits == 12) {
      std::uint16_t v = load_le16(f.data() + static_cast<std::size_t>(n + n / 2));
      return (n & 1) ? (v >> 4) : (v & 0xFFF);
    }
    if (bits == 16) {
      return load_le16(f.data() + static_cast<std::size_t>(n * 2));
    }
    return load_le32(f.data() + static_cast<std::size_t>(n * 4)) & 0x0FFFFFFF;
  };
  if ((entry(0) & 0xFF) != bs[bpb_media]) {
    return fail(Errc::corruption, "FAT: FAT[0] does not hold the media byte");
  }
  if (bits == 16 && (!(entry(1) & k_fat16_clean) || !(entry(1) & k_fat16_no_error))) {
    return fail(Errc::failed_precondition, "FAT: dirty or error bit set in FAT[1]");
  }
  if (bits == 32 && (!(entry(1) & k_fat32_clean) || !(entry(1) & k_fat32_no_error))) {
    return fail(Errc::failed_precondition, "FAT: dirty or error bit set in FAT[1]");
  }
  u.used.add(0, meta_secs * bps);
  const std::uint64_t cluster_bytes = static_cast<std::uint64_t>(spc) * bps;
  const std::uint64_t data_start = meta_secs * bps;
  std::uint64_t free_count = 0;
  for (std::uint64_t n = 2; n < clusters + 2; ++n) {
    if ((n & 0xFFFF) == 0) {
      UTSUSHI_TRY(check_cancelled());
    }
    if (entry(n) != 0) {
      u.used.add(data_start + (n - 2) * cluster_bytes, cluster_bytes);
    } else {
      ++free_count;
    }
  }
  if (bits == 32) {
    std::uint32_t fsi = load_le16(bs.data() + bpb_fs_info);
    if (fsi != 0 && fsi != 0xFFFF && fsi < rsvd) {
      auto fsb = UTSUSHI_TRY(volume.read(static_cast<std::uint64_t>(fsi) * bps, 512, "FAT32 FSInfo"));
      std::span<const std::uint8_t> fs(fsb);
      std::uint32_t stored = load_le32(fs.data() + fsi_free_count);
      if (load_le32(fs.data()) == k_fsinfo_lead && load_le32(fs.data() + fsi_struc_sig) == k_fsinfo_struc && stored != 0xFFFFFFFF &&
          stored != free_count) {
        return fail(Errc::corruption, fmt::format("FAT32: FSInfo says {} free clusters, the FAT has {}", stored,
                                                  free_count));
      }
    }
  }
  u.fs_used_bytes = meta_secs * bps + (clusters - free_count) * cluster_bytes;
  return u;
}

}  // namespace utsushi::disk
