// XFS used-block map: everything except the free extents of each allocation
// group's by-block-number free-space B+tree and the blocks on its AG free
// list (AGFL) -- partclone's xfsclone.c approach (after xfs_db freesp).
// Layout: fs/xfs/libxfs/xfs_format.h (struct xfs_dsb, xfs_agf, xfs_agfl,
// xfs_btree_sblock, xfs_alloc_rec) and "XFS Algorithms & Data Structures"
// (ondisk format doc), chapters "Allocation Groups" and "B+trees". v5
// filesystems carry CRC32C on every structure; all are verified.
// Checks: magics, versions, CRCs, the sum of every AG's free extents against
// agf_freeblks, the AGFL walk against agf_flcount, and the sum over AGs of
// freeblks + flcount + btreeblks against the superblock's sb_fdblocks (which
// is exact only after a clean unmount; a mismatch means "dirty").
#include <fmt/core.h>

#include "utsushi/common/cancel.h"
#include "checksums.h"
#include "decode_util.h"
#include "utsushi/disk/fs_map.h"
#include "utsushi/disk/guid.h"

namespace utsushi::disk {
namespace {

// Superblock (struct xfs_dsb), big-endian.
constexpr std::size_t sb_blocksize = 4, sb_dblocks = 8, sb_uuid = 32, sb_logstart = 48, sb_agblocks = 84,
                      sb_agcount = 88, sb_versionnum = 100, sb_sectsize = 102, sb_fname = 108, sb_inprogress = 126,
                      sb_fdblocks = 144, sb_crc = 224;
constexpr std::uint16_t k_version_mask = 0xF, k_version_5 = 5;
// AGF (struct xfs_agf) at sector 1 of each AG.
constexpr std::size_t agf_magic = 0, agf_seqno = 8, agf_length = 12, agf_bno_root = 16, agf_bno_level = 28,
                      agf_flfirst = 40, agf_fllast = 44, agf_flcount = 48, agf_freeblks = 52, agf_btreeblks = 60,
                      agf_crc = 216;
// AGFL at sector 3: v5 has a 36-byte header (magic, seqno, uuid, lsn, crc).
constexpr std::size_t agfl_crc = 32, agfl_v5_header = 36;
// Short-form B+tree block header: 16 bytes (v4) or 56 bytes (v5, crc at 52).
constexpr std::size_t bb_level = 4, bb_numrecs = 6, bb_v4_header = 16, bb_v5_header = 56, bb_crc = 52;
constexpr std::size_t k_rec_size = 8;  // xfs_alloc_rec: startblock, blockcount (be32 each)
constexpr std::size_t k_ptr_size = 4;  // xfs_alloc_ptr_t
static_assert(agfl_crc + 4 == agfl_v5_header && bb_crc + 4 == bb_v5_header, "v5 headers end with their CRC");
constexpr unsigned k_max_levels = 10;

bool crc_ok(std::span<const std::uint8_t> block, std::size_t crc_off) {
  std::uint32_t stored = load_le32(block.data() + crc_off);
  std::uint32_t c = crc32c_update(~0u, block.first(crc_off));
  static constexpr std::uint8_t zero[4] = {0, 0, 0, 0};
  c = crc32c_update(c, zero);
  c = crc32c_update(c, block.subspan(crc_off + 4));
  return ~c == stored;
}

struct Ctx {
  Volume& vol;
  std::uint64_t bs;
  std::uint64_t agblocks;
  bool v5;
  std::vector<std::uint8_t> free_bits;  // per AG: 1 = free
};

// Walks the bno tree of one AG; adds free extents to `free_bits`.
[[nodiscard]] Result<std::uint64_t> walk_bno(Ctx& c, std::uint32_t ag, std::uint32_t agblocks_this, std::uint32_t root,
                               std::uint32_t levels) {
  if (levels == 0 || levels > k_max_levels) {
    return fail(Errc::corruption, fmt::format("xfs: AG {} bno tree has {} levels", ag, levels));
  }
  const std::size_t hdr = c.v5 ? bb_v5_header : bb_v4_header;
  const std::string_view magic = c.v5 ? "AB3B" : "ABTB";
  const std::uint64_t ag_base = static_cast<std::uint64_t>(ag) * c.agblocks * c.bs;
  std::uint64_t free_total = 0;
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(c.bs));
  std::vector<std::uint32_t> level_blocks{root};
  std::uint64_t visited = 0;
  for (std::uint32_t depth = 0; depth < levels; ++depth) {
    std::vector<std::uint32_t> next;
    for (std::uint32_t b : level_blocks) {
      if (b == 0 || b >= agblocks_this || ++visited > agblocks_this) {
        return fail(Errc::corruption, fmt::format("xfs: AG {} bno tree points at block {}", ag, b));
      }
      UTSUSHI_TRY(c.vol.read(buf, ag_base + b * c.bs, "xfs bno btree block"));
      std::span<const std::uint8_t> s(buf);
      if (!bytes_equal(s, 0, magic) || (c.v5 && !crc_ok(s, bb_crc))) {
        return fail(Errc::corruption, fmt::format("xfs: AG {} bno btree block {} has a bad magic or CRC", ag, b));
      }
      std::uint32_t level = load_be16(s.data() + bb_level);
      std::uint32_t n = load_be16(s.data() + bb_numrecs);
      if (level != levels - 1 - depth) {
        return fail(Errc::corruption, fmt::format("xfs: AG {} bno btree block {} is at the wrong level", ag, b));
      }
      if (level == 0) {
        if (hdr + n * k_rec_size > c.bs) {
          return fail(Errc::corruption, "xfs: bno leaf overflows its block");
        }
        for (std::uint32_t i = 0; i < n; ++i) {
          std::uint32_t start = load_be32(s.data() + hdr + i * k_rec_size);
          std::uint32_t count = load_be32(s.data() + hdr + i * k_rec_size + 4);
          if (count == 0 || start >= agblocks_this || count > agblocks_this - start) {
            return fail(Errc::corruption, fmt::format("xfs: AG {} free extent {}+{} out of range", ag, start, count));
          }
          for (std::uint32_t k = start; k < start + count; ++k) {
            if (c.free_bits[k]) {
              return fail(Errc::corruption, fmt::format("xfs: AG {} block {} is free twice", ag, k));
            }
            c.free_bits[k] = 1;
          }
          free_total += count;
        }
      } else {
        std::size_t maxrecs = (c.bs - hdr) / (k_rec_size + k_ptr_size);
        if (n > maxrecs) {
          return fail(Errc::corruption, "xfs: bno node overflows its block");
        }
        for (std::uint32_t i = 0; i < n; ++i) {
          next.push_back(load_be32(s.data() + hdr + maxrecs * k_rec_size + i * k_ptr_size));
        }
      }
    }
    level_blocks = std::move(next);
  }
  return free_total;
}

}  // namespace

[[nodiscard]] Result<FsUsage> map_xfs(Volume& volume) {
  auto sbb = UTSUSHI_TRY(volume.read(0, 512, "xfs superblock"));
  std::span<const std::uint8_t> sb0(sbb);
  const std::uint32_t sect = load_be16(sb0.data() + sb_sectsize);
  const std::uint32_t bs = load_be32(sb0.data() + sb_blocksize);
  const std::uint64_t dblocks = load_be64(sb0.data() + sb_dblocks);
  const std::uint32_t agblocks = load_be32(sb0.data() + sb_agblocks);
  const std::uint32_t agcount = load_be32(sb0.data() + sb_agcount);
  const bool v5 = (load_be16(sb0.data() + sb_versionnum) & k_version_mask) == k_version_5;
  if (sect < 512 || sect > 32768 || (sect & (sect - 1)) || bs < 512 || bs > 65536 || (bs & (bs - 1)) ||
      agblocks == 0 || agcount == 0 || bs < sect) {
    return fail(Errc::corruption, "xfs: bad superblock geometry");
  }
  std::uint64_t bytes = 0, ag_span = 0;
  if (!mul_ok(dblocks, bs, bytes) || bytes > volume.size() ||
      !mul_ok(static_cast<std::uint64_t>(agcount - 1), agblocks, ag_span) || ag_span >= dblocks) {
    return fail(Errc::corruption, "xfs: filesystem size does not fit its volume");
  }
  auto sbuf = UTSUSHI_TRY(volume.read(0, sect, "xfs superblock"));
  std::span<const std::uint8_t> sb(sbuf);
  if (v5 && !crc_ok(sb, sb_crc)) {
    return fail(Errc::corruption, "xfs: superblock CRC mismatch");
  }
  if (sb[sb_inprogress] != 0) {
    return fail(Errc::failed_precondition, "xfs: mkfs did not finish (sb_inprogress)");
  }
  if (load_be64(sb.data() + sb_logstart) == 0) {
    return fail(Errc::not_supported, "xfs: external log");
  }

  FsUsage u;
  u.filesystem = "xfs";
  u.uuid = guid_from_big_endian(sb.subspan(sb_uuid).first<16>()).text();
  u.label = text_field(sb, sb_fname, 12);
  Ctx c{volume, bs, agblocks, v5, {}};
  std::uint64_t fd_total = 0;
  std::vector<std::uint8_t> agf_buf(sect), agfl_buf(sect);
  for (std::uint32_t ag = 0; ag < agcount; ++ag) {
    UTSUSHI_TRY(check_cancelled());
    const std::uint64_t ag_base = static_cast<std::uint64_t>(ag) * agblocks * bs;
    const std::uint32_t this_blocks =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(agblocks, dblocks - static_cast<std::uint64_t>(ag) * agblocks));
    UTSUSHI_TRY(volume.read(agf_buf, ag_base + sect, "xfs AGF"));
    std::span<const std::uint8_t> agf(agf_buf);
    if (!bytes_equal(agf, agf_magic, "XAGF") || load_be32(agf.data() + agf_seqno) != ag || (v5 && !crc_ok(agf, agf_crc))) {
      return fail(Errc::corruption, fmt::format("xfs: AGF {} has a bad magic, sequence number or CRC", ag));
    }
    if (load_be32(agf.data() + agf_length) != this_blocks) {
      return fail(Errc::corruption, fmt::format("xfs: AGF {} length disagrees with the superblock", ag));
    }
    c.free_bits.assign(this_blocks, 0);
    std::uint64_t freeblks = UTSUSHI_TRY(walk_bno(c, ag, this_blocks, load_be32(agf.data() + agf_bno_root), load_be32(agf.data() + agf_bno_level)));
    if (freeblks != load_be32(agf.data() + agf_freeblks)) {
      return fail(Errc::corruption, fmt::format("xfs: AG {} free extents sum to {} blocks, agf_freeblks says {}", ag,
                                                freeblks, load_be32(agf.data() + agf_freeblks)));
    }
    // The AGFL: a circular array of block numbers from flfirst to fllast.
    UTSUSHI_TRY(volume.read(agfl_buf, ag_base + 3ull * sect, "xfs AGFL"));
    std::span<const std::uint8_t> agfl(agfl_buf);
    std::size_t base = 0;
    if (v5) {
      if (!bytes_equal(agfl, 0, "XAFL") || !crc_ok(agfl, agfl_crc)) {
        return fail(Errc::corruption, fmt::format("xfs: AGFL {} has a bad magic or CRC", ag));
      }
      base = agfl_v5_header;
    }
    const std::uint32_t slots = static_cast<std::uint32_t>((sect - base) / 4);
    const std::uint32_t flcount = load_be32(agf.data() + agf_flcount);
    std::uint32_t first = load_be32(agf.data() + agf_flfirst), last = load_be32(agf.data() + agf_fllast);
    if (flcount > slots || (flcount > 0 && (first >= slots || last >= slots))) {
      return fail(Errc::corruption, fmt::format("xfs: AG {} free list indexes out of range", ag));
    }
    std::uint32_t walked = 0;
    for (std::uint32_t i = first; flcount > 0; i = (i + 1) % slots) {
      std::uint32_t b = load_be32(agfl.data() + base + i * 4ull);
      if (b >= this_blocks || c.free_bits[b]) {
        return fail(Errc::corruption, fmt::format("xfs: AG {} free list block {} invalid", ag, b));
      }
      c.free_bits[b] = 1;
      if (++walked > slots) {
        return fail(Errc::corruption, "xfs: free list loops");
      }
      if (i == last) {
        break;
      }
    }
    if (walked != flcount) {
      return fail(Errc::corruption, fmt::format("xfs: AG {} free list holds {} blocks, agf_flcount says {}", ag,
                                                walked, flcount));
    }
    fd_total += freeblks + flcount + load_be32(agf.data() + agf_btreeblks);
    // Used = not free.
    std::uint32_t run = 0;
    bool in_run = false;
    for (std::uint32_t b = 0; b <= this_blocks; ++b) {
      bool used = b < this_blocks && !c.free_bits[b];
      if (used && !in_run) {
        run = b;
        in_run = true;
      } else if (!used && in_run) {
        u.used.add(ag_base + static_cast<std::uint64_t>(run) * bs, static_cast<std::uint64_t>(b - run) * bs);
        in_run = false;
      }
    }
  }
  if (fd_total != load_be64(sb.data() + sb_fdblocks)) {
    return fail(Errc::failed_precondition,
                fmt::format("xfs: free space in the AGs ({} blocks) disagrees with the superblock ({}): not cleanly "
                            "unmounted?",
                            fd_total, load_be64(sb.data() + sb_fdblocks)));
  }
  u.used.add(0, sect);  // superblock (always in the first block anyway)
  u.fs_used_bytes = (dblocks - load_be64(sb.data() + sb_fdblocks)) * bs;
  return u;
}

}  // namespace utsushi::disk
