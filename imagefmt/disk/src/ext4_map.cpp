// ext2/3/4 used-block map from the block (cluster) bitmaps.
// Layout: Linux Documentation/filesystems/ext4/{super,group_descr,bigalloc,
// checksums}.rst; the BLOCK_UNINIT rule follows e2fsprogs lib/ext2fs/
// rw_bitmaps.c (an uninitialised group's bitmap is not read; its metadata is
// marked used).
//
// Used = boot area + superblock + every group's superblock/GDT backup (with
// reserved GDT blocks), every group's bitmaps and inode table, and every
// cluster whose bitmap bit is set in initialised groups. Checks: magic, state
// (clean, no errors, no journal replay pending), geometry against the volume,
// metadata_csum (superblock, descriptors, block bitmaps) or gdt_csum
// (descriptors), per-group free counts against the bitmaps, and the sum of the
// groups' free counts against the superblock's.
#include <bit>

#include "utsushi/common/cancel.h"
#include "checksums.h"
#include "decode_util.h"
#include "utsushi/disk/fs_map.h"
#include "utsushi/disk/guid.h"

namespace utsushi::disk {
namespace {

// --- On-disk constants (Documentation/filesystems/ext4/super.rst) ---
constexpr std::uint64_t k_sb_offset = 1024;
constexpr std::size_t k_sb_size = 1024;
constexpr std::uint16_t k_magic = 0xEF53;
// Superblock field offsets.
constexpr std::size_t s_blocks_count_lo = 0x4, s_free_blocks_count_lo = 0xC, s_first_data_block = 0x14,
                      s_log_block_size = 0x18, s_log_cluster_size = 0x1C, s_blocks_per_group = 0x20,
                      s_clusters_per_group = 0x24, s_magic = 0x38, s_state = 0x3A, s_rev_level = 0x4C,
                      s_feature_compat = 0x5C, s_feature_incompat = 0x60, s_feature_ro_compat = 0x64, s_uuid = 0x68,
                      s_volume_name = 0x78, s_reserved_gdt_blocks = 0xCE, s_desc_size = 0xFE,
                      s_backup_bgs = 0x24C, s_blocks_count_hi = 0x150, s_free_blocks_count_hi = 0x158,
                      s_checksum_seed = 0x270, s_checksum = 0x3FC;
constexpr std::uint16_t k_state_clean = 0x1, k_state_errors = 0x2, k_state_orphans = 0x4;
static_assert(s_checksum + 4 == k_sb_size, "the superblock checksum is its last field");
constexpr std::uint32_t k_compat_sparse_super2 = 0x200;
constexpr std::uint32_t k_incompat_recover = 0x4, k_incompat_journal_dev = 0x8, k_incompat_meta_bg = 0x10,
                        k_incompat_64bit = 0x80, k_incompat_csum_seed = 0x2000;
constexpr std::uint32_t k_ro_sparse_super = 0x1, k_ro_gdt_csum = 0x10, k_ro_bigalloc = 0x200,
                        k_ro_metadata_csum = 0x400;
// Group descriptor (group_descr.rst).
constexpr std::size_t bg_block_bitmap_lo = 0x0, bg_inode_bitmap_lo = 0x4, bg_inode_table_lo = 0x8,
                      bg_free_blocks_count_lo = 0xC, bg_flags = 0x12, bg_block_bitmap_csum_lo = 0x18,
                      bg_checksum = 0x1E, bg_block_bitmap_hi = 0x20, bg_inode_bitmap_hi = 0x24,
                      bg_inode_table_hi = 0x28, bg_free_blocks_count_hi = 0x2C, bg_block_bitmap_csum_hi = 0x38;
constexpr std::uint16_t k_bg_block_uninit = 0x2;
constexpr std::size_t k_desc_size_min = 32, k_desc_size_64 = 64;
constexpr std::uint32_t k_inode_size_default = 128;

struct Geometry {
  std::uint64_t block_size = 0;
  std::uint64_t blocks = 0;
  std::uint64_t first_data_block = 0;
  std::uint64_t blocks_per_group = 0;
  std::uint64_t clusters_per_group = 0;
  std::uint64_t cluster_ratio = 1;  // blocks per cluster (bigalloc)
  std::uint64_t groups = 0;
  std::size_t desc_size = k_desc_size_min;
  std::uint64_t gdt_blocks = 0;
  std::uint64_t reserved_gdt = 0;
  std::uint32_t compat = 0, incompat = 0, ro_compat = 0;
  std::uint32_t backup_bgs[2] = {0, 0};
  std::uint32_t csum_seed = 0;  // metadata_csum
  bool metadata_csum = false, gdt_csum = false;
};

bool is_power_of(std::uint64_t n, std::uint64_t base) {
  while (n > 1 && n % base == 0) {
    n /= base;
  }
  return n == 1;
}

bool group_has_super(const Geometry& g, std::uint64_t group) {
  if (group == 0) {
    return true;
  }
  if (g.compat & k_compat_sparse_super2) {
    return group == g.backup_bgs[0] || group == g.backup_bgs[1];
  }
  if (!(g.ro_compat & k_ro_sparse_super)) {
    return true;
  }
  return group == 1 || is_power_of(group, 3) || is_power_of(group, 5) || is_power_of(group, 7);
}

[[nodiscard]] Result<Geometry> decode_super(std::span<const std::uint8_t> sb, std::uint64_t volume_size) {
  Geometry g;
  if (load_le16(sb.data() + s_magic) != k_magic) {
    return fail(Errc::corruption, "ext: bad superblock magic");
  }
  g.compat = load_le32(sb.data() + s_feature_compat);
  g.incompat = load_le32(sb.data() + s_feature_incompat);
  g.ro_compat = load_le32(sb.data() + s_feature_ro_compat);
  g.metadata_csum = (g.ro_compat & k_ro_metadata_csum) != 0;
  g.gdt_csum = !g.metadata_csum && (g.ro_compat & k_ro_gdt_csum) != 0;
  if (g.metadata_csum) {
    std::uint32_t stored = load_le32(sb.data() + s_checksum);
    std::uint32_t computed = crc32c_update(~0u, sb.first(s_checksum));
    if (stored != computed) {
      return fail(Errc::corruption, "ext: superblock checksum mismatch");
    }
    g.csum_seed = (g.incompat & k_incompat_csum_seed) ? load_le32(sb.data() + s_checksum_seed)
                                                       : crc32c_update(~0u, sb.subspan(s_uuid, 16));
  }
  std::uint16_t state = load_le16(sb.data() + s_state);
  if (!(state & k_state_clean) || (state & k_state_orphans)) {
    return fail(Errc::failed_precondition, "ext: filesystem was not cleanly unmounted (dirty)");
  }
  if (state & k_state_errors) {
    return fail(Errc::failed_precondition, "ext: filesystem has errors recorded (run e2fsck)");
  }
  if (g.incompat & k_incompat_recover) {
    return fail(Errc::failed_precondition, "ext: the journal needs recovery");
  }
  if (g.incompat & k_incompat_journal_dev) {
    return fail(Errc::not_supported, "ext: external journal device");
  }
  if (g.incompat & k_incompat_meta_bg) {
    return fail(Errc::not_supported, "ext: meta_bg layout is not supported");
  }
  std::uint32_t log_block = load_le32(sb.data() + s_log_block_size);
  std::uint32_t log_cluster = load_le32(sb.data() + s_log_cluster_size);
  if (log_block > 6 || log_cluster > 25 || ((g.ro_compat & k_ro_bigalloc) && log_cluster < log_block)) {
    return fail(Errc::corruption, "ext: bad block or cluster size");
  }
  g.block_size = 1024ull << log_block;
  g.cluster_ratio = (g.ro_compat & k_ro_bigalloc) ? (1ull << (log_cluster - log_block)) : 1;
  g.blocks = load_le32(sb.data() + s_blocks_count_lo);
  if (g.incompat & k_incompat_64bit) {
    g.blocks |= static_cast<std::uint64_t>(load_le32(sb.data() + s_blocks_count_hi)) << 32;
    g.desc_size = load_le16(sb.data() + s_desc_size);
    if (g.desc_size < k_desc_size_64 || g.desc_size > 1024 || (g.desc_size & (g.desc_size - 1)) != 0) {
      return fail(Errc::corruption, "ext: bad group descriptor size");
    }
  }
  g.first_data_block = load_le32(sb.data() + s_first_data_block);
  g.blocks_per_group = load_le32(sb.data() + s_blocks_per_group);
  g.clusters_per_group = (g.ro_compat & k_ro_bigalloc) ? load_le32(sb.data() + s_clusters_per_group) : g.blocks_per_group;
  g.reserved_gdt = load_le16(sb.data() + s_reserved_gdt_blocks);
  g.backup_bgs[0] = load_le32(sb.data() + s_backup_bgs);
  g.backup_bgs[1] = load_le32(sb.data() + s_backup_bgs + 4);
  std::uint64_t bytes = 0;
  if (g.blocks_per_group == 0 || g.clusters_per_group == 0 || g.blocks <= g.first_data_block ||
      g.clusters_per_group * g.cluster_ratio != g.blocks_per_group || g.clusters_per_group > g.block_size * 8 ||
      !mul_ok(g.blocks, g.block_size, bytes)) {
    return fail(Errc::corruption, "ext: inconsistent geometry in the superblock");
  }
  if (bytes > volume_size) {
    return fail(Errc::corruption, "ext: filesystem (" + std::to_string(bytes) + " bytes) is larger than its volume (" +
                                      std::to_string(volume_size) + " bytes)");
  }
  g.groups = (g.blocks - g.first_data_block + g.blocks_per_group - 1) / g.blocks_per_group;
  // Group numbers are 32 bits (the kernel refuses more groups too).
  if (g.groups > (std::uint64_t{1} << 32)) {
    return fail(Errc::corruption, "ext: " + std::to_string(g.groups) + " block groups (blocks per group " +
                                      std::to_string(g.blocks_per_group) + ") is too many");
  }
  std::uint64_t gdt_bytes = 0;
  if (!mul_ok(g.groups, g.desc_size, gdt_bytes)) {
    return fail(Errc::corruption, "ext: group descriptor table size overflows");
  }
  g.gdt_blocks = (gdt_bytes + g.block_size - 1) / g.block_size;
  // Without meta_bg (refused above) the descriptor table follows the primary
  // superblock inside group 0, with its reserved growth blocks after it.
  const std::uint64_t gdt_first = k_sb_offset / g.block_size + 1;
  std::uint64_t gdt_end = 0;
  if (!add_ok(gdt_first, g.gdt_blocks, gdt_end) || !add_ok(gdt_end, g.reserved_gdt, gdt_end) ||
      gdt_end > g.first_data_block + g.blocks_per_group || gdt_end > g.blocks) {
    return fail(Errc::corruption, "ext: the group descriptor table (" + std::to_string(g.gdt_blocks) +
                                      " blocks for " + std::to_string(g.groups) +
                                      " groups) does not fit in the first block group");
  }
  return g;
}

std::uint64_t desc_u64(std::span<const std::uint8_t> d, const Geometry& g, std::size_t lo, std::size_t hi) {
  std::uint64_t v = load_le32(d.data() + lo);
  if (g.desc_size >= k_desc_size_64) {
    v |= static_cast<std::uint64_t>(load_le32(d.data() + hi)) << 32;
  }
  return v;
}

[[nodiscard]] Result<void> verify_desc(std::span<const std::uint8_t> d, const Geometry& g, std::span<const std::uint8_t> sb,
                         std::uint32_t group) {
  std::uint8_t le_group[4];
  store_le32(le_group, group);
  std::uint16_t stored = load_le16(d.data() + bg_checksum);
  static constexpr std::uint8_t k_zero16[2] = {0, 0};
  std::uint16_t computed = 0;
  if (g.metadata_csum) {
    std::uint32_t c = crc32c_update(g.csum_seed, le_group);
    c = crc32c_update(c, d.first(bg_checksum));
    c = crc32c_update(c, k_zero16);
    if (g.desc_size > bg_checksum + 2) {
      c = crc32c_update(c, d.subspan(bg_checksum + 2, g.desc_size - bg_checksum - 2));
    }
    computed = static_cast<std::uint16_t>(c & 0xFFFF);
  } else if (g.gdt_csum) {
    std::uint16_t c = crc16_update(0xFFFF, sb.subspan(s_uuid, 16));
    c = crc16_update(c, le_group);
    c = crc16_update(c, d.first(bg_checksum));
    if ((g.incompat & k_incompat_64bit) && g.desc_size > bg_checksum + 2) {
      c = crc16_update(c, d.subspan(bg_checksum + 2, g.desc_size - bg_checksum - 2));
    }
    computed = c;
  } else {
    return {};
  }
  if (stored != computed) {
    return fail(Errc::corruption, "ext: group descriptor " + std::to_string(group) + " checksum mismatch");
  }
  return {};
}

}  // namespace

[[nodiscard]] Result<FsUsage> map_ext(Volume& volume) {
  auto sb_buf = UTSUSHI_TRY(volume.read(k_sb_offset, k_sb_size, "ext superblock"));
  std::span<const std::uint8_t> sb(sb_buf);
  Geometry g = UTSUSHI_TRY(decode_super(sb, volume.size()));
  (void)k_inode_size_default;
  (void)s_rev_level;

  FsUsage u;
  u.filesystem = (g.incompat & 0x40) || (g.incompat & k_incompat_64bit) ? "ext4" : "ext2/3";
  u.uuid = guid_from_big_endian(sb.subspan(s_uuid).first<16>()).text();
  u.label = text_field(sb, s_volume_name, 16);
  const std::uint64_t bs = g.block_size;

  // Group descriptors follow the block holding the primary superblock (block
  // 1 with 1 KiB blocks, even with bigalloc where s_first_data_block is 0).
  const std::uint64_t sb_block = k_sb_offset / bs;
  std::uint64_t gdt_offset = (sb_block + 1) * bs;
  std::uint64_t gdt_bytes = g.groups * g.desc_size;
  auto gdt = UTSUSHI_TRY(volume.read(gdt_offset, static_cast<std::size_t>(gdt_bytes), "ext group descriptors"));

  // Fixed metadata: the boot area and the primary superblock, then each
  // group's backups, bitmaps and inode tables.
  u.used.add(0, std::max<std::uint64_t>(k_sb_offset + k_sb_size, (g.first_data_block + 1) * bs));
  std::uint64_t inode_table_blocks = 0;
  {
    std::uint32_t ipg = load_le32(sb.data() + 0x28);
    std::uint16_t isz = load_le16(sb.data() + 0x58);
    if (load_le32(sb.data() + s_rev_level) == 0 || isz == 0) {
      isz = 128;
    }
    inode_table_blocks = (static_cast<std::uint64_t>(ipg) * isz + bs - 1) / bs;
  }
  std::uint64_t free_from_descs = 0, free_from_bitmaps = 0;
  const std::uint64_t bitmap_bytes = g.clusters_per_group / 8;
  std::vector<std::uint8_t> bitmap(static_cast<std::size_t>(bs));
  auto block_ok = [&](std::uint64_t blk, std::uint64_t count) {
    std::uint64_t end = 0;
    return add_ok(blk, count, end) && end <= g.blocks;
  };
  const std::uint64_t cluster_bytes = bs * g.cluster_ratio;

  for (std::uint64_t grp = 0; grp < g.groups; ++grp) {
    if (grp % 1024 == 0) {
      UTSUSHI_TRY(check_cancelled());
    }
    auto d = std::span<const std::uint8_t>(gdt).subspan(static_cast<std::size_t>(grp * g.desc_size), g.desc_size);
    UTSUSHI_TRY(verify_desc(d, g, sb, static_cast<std::uint32_t>(grp)));
    const std::uint64_t first = g.first_data_block + grp * g.blocks_per_group;
    const std::uint64_t blocks_in_group = std::min(g.blocks_per_group, g.blocks - first);
    const std::uint64_t clusters_in_group = (blocks_in_group + g.cluster_ratio - 1) / g.cluster_ratio;
    if (group_has_super(g, grp)) {
      std::uint64_t n = 1 + g.gdt_blocks + g.reserved_gdt;
      std::uint64_t at = grp == 0 ? sb_block : first;
      if (!block_ok(at, n)) {
        return fail(Errc::corruption, "ext: group " + std::to_string(grp) + " backup lies outside the filesystem");
      }
      u.used.add(at * bs, n * bs);
    }
    std::uint64_t bb = desc_u64(d, g, bg_block_bitmap_lo, bg_block_bitmap_hi);
    std::uint64_t ib = desc_u64(d, g, bg_inode_bitmap_lo, bg_inode_bitmap_hi);
    std::uint64_t it = desc_u64(d, g, bg_inode_table_lo, bg_inode_table_hi);
    if (!block_ok(bb, 1) || !block_ok(ib, 1) || !block_ok(it, inode_table_blocks)) {
      return fail(Errc::corruption, "ext: group " + std::to_string(grp) + " metadata lies outside the filesystem");
    }
    u.used.add(bb * bs, bs);
    u.used.add(ib * bs, bs);
    u.used.add(it * bs, inode_table_blocks * bs);
    std::uint64_t desc_free = load_le16(d.data() + bg_free_blocks_count_lo);
    if (g.desc_size >= k_desc_size_64) {
      desc_free |= static_cast<std::uint64_t>(load_le16(d.data() + bg_free_blocks_count_hi)) << 16;
    }
    free_from_descs += desc_free;
    if ((load_le16(d.data() + bg_flags) & k_bg_block_uninit) && (g.metadata_csum || g.gdt_csum)) {
      continue;  // bitmap never written: only the metadata marked above is in use
    }
    UTSUSHI_TRY(volume.read(bitmap, bb * bs, "ext block bitmap"));
    if (g.metadata_csum) {
      std::uint32_t c = crc32c_update(g.csum_seed, std::span<const std::uint8_t>(bitmap).first(bitmap_bytes));
      std::uint32_t stored = load_le16(d.data() + bg_block_bitmap_csum_lo);
      bool hi = g.desc_size >= bg_block_bitmap_csum_hi + 2;
      if (hi) {
        stored |= static_cast<std::uint32_t>(load_le16(d.data() + bg_block_bitmap_csum_hi)) << 16;
      }
      if (stored != (hi ? c : (c & 0xFFFF))) {
        return fail(Errc::corruption, "ext: block bitmap of group " + std::to_string(grp) + " checksum mismatch");
      }
    }
    std::uint64_t used_in_group = 0;
    std::uint64_t run_start = 0;
    bool in_run = false;
    for (std::uint64_t c = 0; c <= clusters_in_group; ++c) {
      bool set = c < clusters_in_group && ((bitmap[static_cast<std::size_t>(c / 8)] >> (c % 8)) & 1);
      if (set) {
        ++used_in_group;
        if (!in_run) {
          run_start = c;
          in_run = true;
        }
      } else if (in_run) {
        u.used.add(first * bs + run_start * cluster_bytes, (c - run_start) * cluster_bytes);
        in_run = false;
      }
    }
    std::uint64_t bitmap_free = clusters_in_group - used_in_group;
    free_from_bitmaps += bitmap_free;
    if (bitmap_free != desc_free) {
      return fail(Errc::corruption, "ext: group " + std::to_string(grp) + " bitmap has " +
                                        std::to_string(bitmap_free) + " free clusters, its descriptor says " +
                                        std::to_string(desc_free));
    }
  }
  std::uint64_t sb_free = load_le32(sb.data() + s_free_blocks_count_lo);
  if (g.incompat & k_incompat_64bit) {
    sb_free |= static_cast<std::uint64_t>(load_le32(sb.data() + s_free_blocks_count_hi)) << 32;
  }
  // s_free_blocks_count counts blocks; the descriptors count clusters.
  if (sb_free != free_from_descs * g.cluster_ratio) {
    return fail(Errc::corruption, "ext: superblock free count (" + std::to_string(sb_free) +
                                      ") disagrees with the group descriptors (" +
                                      std::to_string(free_from_descs * g.cluster_ratio) + ")");
  }
  (void)free_from_bitmaps;
  u.fs_used_bytes = (g.blocks - g.first_data_block) * bs - sb_free * bs;
  return u;
}

}  // namespace utsushi::disk
