// NTFS used-block map from $Bitmap (MFT record 6): one bit per cluster, as
// partclone's ntfsclone-ng reads it through ntfs-3g. Layout: the NTFS
// documentation of the Linux-NTFS project ("NTFS Documentation", R. Russon &
// Y. Fledel) and ntfs-3g's include/ntfs-3g/layout.h: boot sector (BPB),
// FILE records with update sequence arrays (fixups), attribute headers,
// mapping pairs (data runs), $VOLUME_INFORMATION flags.
// Also copied: the backup boot sector in the partition's last sector (after
// the volume's clusters). Checks: boot sector geometry, record magic and
// fixups, $Bitmap large enough for every cluster, the MFT's and the bitmap's
// own clusters marked in use, and the volume's dirty flag ($Volume, record 3).
#include <fmt/core.h>

#include <optional>

#include "utsushi/common/cancel.h"
#include "decode_util.h"
#include "utsushi/disk/fs_map.h"

namespace utsushi::disk {
namespace {

constexpr std::size_t bpb_bytes_per_sec = 11, bpb_sec_per_clus = 13, bpb_total_sectors = 40, bpb_mft_lcn = 48,
                      bpb_clus_per_mft_rec = 64, bpb_serial = 72;
constexpr std::size_t rec_usa_ofs = 4, rec_usa_count = 6, rec_attrs_offset = 20, rec_flags = 22,
                      rec_bytes_in_use = 24;
constexpr std::size_t at_type = 0, at_length = 4, at_non_resident = 8, at_name_length = 9, at_value_length = 16,
                      at_value_offset = 20, at_mapping_pairs = 32, at_data_size = 48;
constexpr std::uint32_t k_attr_volume_information = 0x70, k_attr_data = 0x80, k_attr_list = 0x20,
                        k_attr_end = 0xFFFFFFFF;
constexpr std::uint16_t k_volume_dirty = 0x0001;
constexpr std::uint64_t k_record_volume = 3, k_record_bitmap = 6;

struct Run {
  std::uint64_t lcn;
  std::uint64_t clusters;
  bool sparse;
};

struct Ntfs {
  std::uint64_t bps = 0, cluster = 0, total_clusters = 0, record_size = 0, mft_offset = 0;
};

[[nodiscard]] Result<std::vector<std::uint8_t>> read_record(Volume& v, const Ntfs& n, std::uint64_t index) {
  auto rec = UTSUSHI_TRY(v.read(n.mft_offset + index * n.record_size, static_cast<std::size_t>(n.record_size),
                                "NTFS MFT record"));
  std::span<std::uint8_t> r(rec);
  if (!bytes_equal(r, 0, "FILE")) {
    return fail(Errc::corruption, fmt::format("NTFS: MFT record {} has no FILE magic", index));
  }
  std::uint16_t usa = load_le16(r.data() + rec_usa_ofs), count = load_le16(r.data() + rec_usa_count);
  if (count == 0 || usa + count * 2ull > n.record_size || (count - 1ull) * 512 > n.record_size) {
    return fail(Errc::corruption, fmt::format("NTFS: MFT record {} has a bad update sequence array", index));
  }
  std::uint16_t usn = load_le16(r.data() + usa);
  for (std::size_t i = 1; i < count; ++i) {
    std::size_t end = i * 512 - 2;
    if (load_le16(r.data() + end) != usn) {
      return fail(Errc::corruption, fmt::format("NTFS: MFT record {} fails its fixup check (torn write)", index));
    }
    r[end] = r[usa + 2 * i];
    r[end + 1] = r[usa + 2 * i + 1];
  }
  if (!(load_le16(r.data() + rec_flags) & 1)) {
    return fail(Errc::corruption, fmt::format("NTFS: MFT record {} is not in use", index));
  }
  return rec;
}

// The unnamed attribute of `type` in `rec` (offset into rec), or nullopt.
[[nodiscard]] Result<std::optional<std::size_t>> find_attr(std::span<const std::uint8_t> r, std::uint32_t type) {
  std::size_t off = load_le16(r.data() + rec_attrs_offset);
  std::size_t limit = std::min<std::size_t>(load_le32(r.data() + rec_bytes_in_use), r.size());
  while (off + 16 <= limit) {
    std::uint32_t t = load_le32(r.data() + off + at_type);
    if (t == k_attr_end) {
      break;
    }
    std::uint32_t len = load_le32(r.data() + off + at_length);
    if (len < 16 || off + len > limit) {
      return fail(Errc::corruption, "NTFS: attribute overruns its record");
    }
    if (t == k_attr_list) {
      return fail(Errc::not_supported, "NTFS: attribute lists (very fragmented system files) are not supported");
    }
    if (t == type && r[off + at_name_length] == 0) {
      return std::optional<std::size_t>(off);
    }
    off += len;
  }
  return std::optional<std::size_t>();
}

[[nodiscard]] Result<std::vector<Run>> decode_runs(std::span<const std::uint8_t> attr, std::uint64_t total_clusters) {
  std::vector<Run> runs;
  std::size_t p = load_le16(attr.data() + at_mapping_pairs);
  std::int64_t lcn = 0;
  while (p < attr.size() && attr[p] != 0) {
    unsigned lsize = attr[p] & 0xF, osize = attr[p] >> 4;
    if (lsize == 0 || lsize > 8 || osize > 8 || p + 1 + lsize + osize > attr.size()) {
      return fail(Errc::corruption, "NTFS: bad mapping pair");
    }
    std::uint64_t len = 0;
    for (unsigned i = 0; i < lsize; ++i) {
      len |= static_cast<std::uint64_t>(attr[p + 1 + i]) << (8 * i);
    }
    std::int64_t delta = 0;
    if (osize > 0) {
      std::uint64_t d = 0;
      for (unsigned i = 0; i < osize; ++i) {
        d |= static_cast<std::uint64_t>(attr[p + 1 + lsize + i]) << (8 * i);
      }
      if (osize < 8 && (d >> (8 * osize - 1)) & 1) {
        d |= ~0ull << (8 * osize);  // sign-extend
      }
      delta = static_cast<std::int64_t>(d);
      lcn += delta;
      if (lcn < 0 || static_cast<std::uint64_t>(lcn) >= total_clusters || len > total_clusters - static_cast<std::uint64_t>(lcn)) {
        return fail(Errc::corruption, "NTFS: data run outside the volume");
      }
    }
    runs.push_back({static_cast<std::uint64_t>(lcn), len, osize == 0});
    p += 1 + lsize + osize;
  }
  return runs;
}

}  // namespace

[[nodiscard]] Result<FsUsage> map_ntfs(Volume& volume) {
  auto bsb = UTSUSHI_TRY(volume.read(0, 512, "NTFS boot sector"));
  std::span<const std::uint8_t> bs(bsb);
  Ntfs n;
  n.bps = load_le16(bs.data() + bpb_bytes_per_sec);
  std::uint8_t spc = bs[bpb_sec_per_clus];
  std::uint64_t sectors_per_cluster = spc <= 0x80 ? spc : (1ull << (256 - spc));
  if (n.bps < 256 || n.bps > 4096 || (n.bps & (n.bps - 1)) || sectors_per_cluster == 0 ||
      (sectors_per_cluster & (sectors_per_cluster - 1)) || sectors_per_cluster > 4096) {
    return fail(Errc::corruption, "NTFS: bad boot sector geometry");
  }
  n.cluster = n.bps * sectors_per_cluster;
  std::uint64_t total_sectors = load_le64(bs.data() + bpb_total_sectors);
  std::uint64_t vol_bytes = 0;
  if (!mul_ok(total_sectors, n.bps, vol_bytes) || vol_bytes > volume.size()) {
    return fail(Errc::corruption, "NTFS: volume larger than its partition");
  }
  n.total_clusters = vol_bytes / n.cluster;
  auto cpr = static_cast<std::int8_t>(bs[bpb_clus_per_mft_rec]);
  n.record_size = cpr > 0 ? static_cast<std::uint64_t>(cpr) * n.cluster : (1ull << (-cpr));
  std::uint64_t mft_lcn = load_le64(bs.data() + bpb_mft_lcn);
  if (n.record_size < 512 || n.record_size > 65536 || mft_lcn >= n.total_clusters) {
    return fail(Errc::corruption, "NTFS: bad MFT location or record size");
  }
  n.mft_offset = mft_lcn * n.cluster;

  FsUsage u;
  u.filesystem = "ntfs";
  u.uuid = fmt::format("{:016X}", load_le64(bs.data() + bpb_serial));

  // Dirty flag: $Volume's $VOLUME_INFORMATION (flags at value offset 10).
  {
    auto rec = UTSUSHI_TRY(read_record(volume, n, k_record_volume));
    std::span<const std::uint8_t> r(rec);
    auto off = UTSUSHI_TRY(find_attr(r, k_attr_volume_information));
    if (off && r[*off + at_non_resident] == 0) {
      std::size_t vo = *off + load_le16(r.data() + *off + at_value_offset);
      if (load_le32(r.data() + *off + at_value_length) >= 12 && vo + 12 <= r.size() && (load_le16(r.data() + vo + 10) & k_volume_dirty)) {
        return fail(Errc::failed_precondition, "NTFS: volume is marked dirty (run chkdsk, or shut Windows down fully)");
      }
    }
  }

  auto rec = UTSUSHI_TRY(read_record(volume, n, k_record_bitmap));
  std::span<const std::uint8_t> r(rec);
  auto off = UTSUSHI_TRY(find_attr(r, k_attr_data));
  if (!off) {
    return fail(Errc::corruption, "NTFS: $Bitmap has no $DATA");
  }
  std::span<const std::uint8_t> attr = r.subspan(*off, load_le32(r.data() + *off + at_length));
  std::vector<std::uint8_t> bitmap;
  const std::uint64_t need = (n.total_clusters + 7) / 8;
  if (attr[at_non_resident] == 0) {
    std::size_t vo = load_le16(attr.data() + at_value_offset), vl = load_le32(attr.data() + at_value_length);
    if (vo + vl > attr.size()) {
      return fail(Errc::corruption, "NTFS: resident $Bitmap overruns its attribute");
    }
    bitmap.assign(attr.begin() + static_cast<std::ptrdiff_t>(vo), attr.begin() + static_cast<std::ptrdiff_t>(vo + vl));
  } else {
    std::uint64_t data_size = load_le64(attr.data() + at_data_size);
    if (data_size < need || data_size > need + 2 * n.cluster + 8) {
      return fail(Errc::corruption, fmt::format("NTFS: $Bitmap has {} bytes for {} clusters", data_size,
                                                n.total_clusters));
    }
    auto runs = UTSUSHI_TRY(decode_runs(attr, n.total_clusters));
    bitmap.reserve(static_cast<std::size_t>(data_size));
    for (const Run& run : runs) {
      std::size_t bytes = static_cast<std::size_t>(run.clusters * n.cluster);
      std::size_t want = std::min<std::size_t>(bytes, static_cast<std::size_t>(data_size - bitmap.size()));
      if (run.sparse) {
        bitmap.insert(bitmap.end(), want, 0);
      } else {
        auto part = UTSUSHI_TRY(volume.read(run.lcn * n.cluster, want, "NTFS $Bitmap"));
        bitmap.insert(bitmap.end(), part.begin(), part.end());
      }
      if (bitmap.size() >= data_size) {
        break;
      }
    }
  }
  if (bitmap.size() < need) {
    return fail(Errc::corruption, "NTFS: $Bitmap is shorter than the volume");
  }
  auto bit = [&](std::uint64_t c) { return (bitmap[static_cast<std::size_t>(c / 8)] >> (c % 8)) & 1; };
  if (!bit(0) || !bit(mft_lcn)) {
    return fail(Errc::corruption, "NTFS: $Bitmap does not mark the boot sector or the MFT as used");
  }
  std::uint64_t used_clusters = 0, run_start = 0;
  bool in_run = false;
  for (std::uint64_t c = 0; c <= n.total_clusters; ++c) {
    if ((c & 0xFFFFF) == 0) {
      UTSUSHI_TRY(check_cancelled());
    }
    bool set = c < n.total_clusters && bit(c);
    used_clusters += set ? 1 : 0;
    if (set && !in_run) {
      run_start = c;
      in_run = true;
    } else if (!set && in_run) {
      u.used.add(run_start * n.cluster, (c - run_start) * n.cluster);
      in_run = false;
    }
  }
  // The backup boot sector: the sector after the volume, the partition's last.
  std::uint64_t tail = n.total_clusters * n.cluster;
  u.used.add(tail, std::min(volume.size() - tail, n.cluster + n.bps));
  u.used.add(volume.size() - n.bps, n.bps);
  u.fs_used_bytes = used_clusters * n.cluster;
  return u;
}

}  // namespace utsushi::disk
