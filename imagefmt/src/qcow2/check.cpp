// qcow2 consistency check with `qemu-img check` semantics
// (block/qcow2-refcount.c qcow2_check_refcounts): rebuild the reference
// counts from the metadata, compare with the stored refcounts, and check the
// OFLAG_COPIED bits of the active L1/L2 tables.
#include <algorithm>

#include "load.h"
#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/raw.h"

namespace utsushi::imagefmt {
namespace {

using namespace qcow2;

// Reads as QEMU's block layer does: bytes past the end of the file read as
// zeros (a truncated table is an empty one, not an I/O error).
[[nodiscard]] Result<void> read_zero_filled(BlockDevice& file, std::span<std::uint8_t> buf, std::uint64_t offset) {
  std::fill(buf.begin(), buf.end(), 0);
  if (offset >= file.size()) {
    return {};
  }
  auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), file.size() - offset));
  return file.pread(buf.first(n), offset);
}

class Checker {
 public:
  Checker(BlockDevice& file, std::string path, const Header& h)
      : m_file(file), m_path(std::move(path)), m_h(h), m_cs(h.cluster_size()), m_file_size(file.size()) {
    m_file_len = (m_file_size + k_sector_size - 1) / k_sector_size * k_sector_size;
    m_ref.assign(static_cast<std::size_t>((m_file_len + m_cs - 1) / m_cs), 0);
  }

  [[nodiscard]] Result<Qcow2CheckReport> run(bool has_bitmaps);

 private:
  void error(std::string msg) {
    ++m_report.corruptions;
    m_report.messages.push_back("ERROR " + std::move(msg));
  }
  // A structure that could not be read: the check goes on without it, as
  // qemu-img check does, and the run counts as failed (check_errors).
  void check_error(const Error& e, std::string_view what) {
    ++m_report.check_errors;
    m_report.messages.push_back("ERROR: cannot read " + std::string(what) + ": " + e.message());
  }
  // Counts one reference to every cluster of [offset, offset + length). As
  // qemu-img check (qcow2_inc_refcounts_imrt): the last cluster of an image
  // may be partly past the end of the file, but a region reaching a whole
  // cluster or more past it is a corruption and is not counted (a truncated
  // image reports every such reference).
  void inc(std::uint64_t offset, std::uint64_t length) {
    if (length == 0) {
      return;
    }
    if (offset > k_max_virtual_size || length > k_max_virtual_size || offset + length >= m_file_len + m_cs) {
      ++m_report.corruptions;
      m_report.messages.push_back(
          "ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x" +
          fmt_hex(offset) + " size 0x" + fmt_hex(length));
      return;
    }
    std::uint64_t first = offset / m_cs;
    std::uint64_t last = (offset + length - 1) / m_cs;
    if (last >= m_ref.size()) {
      m_ref.resize(static_cast<std::size_t>(last + 1), 0);
    }
    for (std::uint64_t c = first; c <= last; ++c) {
      ++m_ref[static_cast<std::size_t>(c)];
    }
  }
  ReadAt read_at() {
    return [this](std::span<std::uint8_t> buf, std::uint64_t offset) { return read_zero_filled(m_file, buf, offset); };
  }
  [[nodiscard]] Result<std::vector<std::uint64_t>> read_table(std::uint64_t offset, std::uint64_t entries);
  [[nodiscard]] Result<void> walk_l1(std::uint64_t l1_offset, std::uint64_t l1_size, bool active);
  [[nodiscard]] Result<void> walk_l2(std::uint64_t l2_offset, bool active);
  [[nodiscard]] Result<void> walk_snapshots();
  [[nodiscard]] Result<void> count_refcount_metadata();
  [[nodiscard]] Result<std::uint64_t> stored_refcount(std::uint64_t cluster);

  BlockDevice& m_file;
  std::string m_path;
  Header m_h;
  std::uint64_t m_cs;
  std::uint64_t m_file_size;
  std::uint64_t m_file_len;  // as QEMU sees it: the size rounded up to 512 bytes
  std::vector<std::uint64_t> m_ref;
  std::vector<std::uint64_t> m_reftable;
  std::uint64_t m_cached_block_off = 0;
  std::vector<std::uint8_t> m_cached_block;
  // Active entries whose COPIED bit is checked: (cluster, entry, is_l1).
  struct Copied {
    std::uint64_t cluster;
    std::uint64_t entry;
    bool l1;
  };
  std::vector<Copied> m_copied;
  Qcow2CheckReport m_report;
};

Result<std::vector<std::uint64_t>> Checker::read_table(std::uint64_t offset, std::uint64_t entries) {
  std::vector<std::uint8_t> raw(static_cast<std::size_t>(entries * k_table_entry_bytes));
  UTSUSHI_TRY(read_zero_filled(m_file, raw, offset));
  std::vector<std::uint64_t> t(static_cast<std::size_t>(entries));
  for (std::size_t i = 0; i < t.size(); ++i) {
    t[i] = load_be64(raw.data() + i * k_table_entry_bytes);
  }
  return t;
}

Result<void> Checker::walk_l2(std::uint64_t l2_offset, bool active) {
  const bool ext = m_h.extended_l2();
  auto tr = read_table(l2_offset, m_cs / k_table_entry_bytes);
  if (!tr) {
    check_error(tr.error(), "L2 table at offset " + std::to_string(l2_offset));
    return {};
  }
  const auto& t = *tr;
  const auto layout = compressed_layout(m_h.cluster_bits);
  const std::uint64_t step = ext ? 2 : 1;
  for (std::size_t i = 0; i < t.size(); i += step) {
    std::uint64_t e = t[i];
    std::uint64_t bitmap = ext ? t[i + 1] : 0;
    if ((e & k_oflag_compressed) != 0) {
      if ((e & k_oflag_copied) != 0) {
        error("compressed cluster with the copied flag set: l2_entry=0x" + fmt_hex(e));
      }
      if (ext && bitmap != 0) {
        error("compressed cluster with a non-zero subcluster bitmap: l2_entry=0x" + fmt_hex(e));
      }
      auto ref = decode_compressed(e, layout);
      inc(ref.host_offset, ref.max_bytes);
      if (active) {
        ++m_report.allocated_clusters;
        ++m_report.compressed_clusters;
      }
      continue;
    }
    // As qemu-img check: a damaged entry is reported and then counted as
    // what it points at, so later counts match qemu-img's.
    if (!ext && (e & k_l2e_std_reserved_mask) != 0) {
      error("L2 entry with reserved bits set: l2_entry=0x" + fmt_hex(e));
    }
    std::uint64_t off = e & k_l2e_offset_mask;
    if (off == 0) {
      if (ext && (bitmap & 0xffffffffu) != 0) {
        error("unallocated cluster with allocated subclusters: l2_entry=0x" + fmt_hex(e));
      }
      continue;
    }
    if ((off & (m_cs - 1)) != 0) {
      error("data cluster is not properly aligned: l2_entry=0x" + fmt_hex(e));
    }
    inc(off, m_cs);
    if (active) {
      ++m_report.allocated_clusters;
      m_copied.push_back({off / m_cs, e, false});
    }
  }
  return {};
}

Result<void> Checker::walk_l1(std::uint64_t l1_offset, std::uint64_t l1_size, bool active) {
  if (l1_size == 0) {
    return {};
  }
  if ((l1_offset & (m_cs - 1)) != 0 || l1_size * k_table_entry_bytes > k_max_l1_bytes ||
      l1_offset > k_max_virtual_size) {
    error("L1 table at offset " + std::to_string(l1_offset) + " is invalid");
    return {};
  }
  inc(l1_offset, l1_size * k_table_entry_bytes);
  auto l1r = read_table(l1_offset, l1_size);
  if (!l1r) {
    check_error(l1r.error(), "L1 table at offset " + std::to_string(l1_offset));
    return {};
  }
  const auto& l1 = *l1r;
  // As qemu-img check (check_refcounts_l1): any non-zero entry is walked,
  // after its damage (reserved bits, misalignment) is reported.
  for (std::size_t i = 0; i < l1.size(); ++i) {
    std::uint64_t e = l1[i];
    if (e == 0) {
      continue;
    }
    if ((e & k_l1e_reserved_mask) != 0) {
      error("found L1 entry with reserved bits set: l1_entry=0x" + fmt_hex(e));
    }
    std::uint64_t off = e & k_l1e_offset_mask;
    inc(off, m_cs);
    if ((off & (m_cs - 1)) != 0) {
      error("l2_offset=" + fmt_hex(off) + ": Table is not cluster aligned; L1 entry corrupted");
    }
    if (active && off != 0) {
      m_copied.push_back({off / m_cs, e, true});
    }
    UTSUSHI_TRY(walk_l2(off, active));
  }
  return {};
}

Result<void> Checker::count_refcount_metadata() {
  std::uint64_t entries = std::uint64_t{m_h.refcount_table_clusters} * m_cs / k_table_entry_bytes;
  inc(m_h.refcount_table_offset, std::uint64_t{m_h.refcount_table_clusters} * m_cs);
  auto rt = read_table(m_h.refcount_table_offset, entries);
  if (!rt) {
    // Without it no stored refcount is known: every reference would look
    // like a corruption, so stop here.
    check_error(rt.error(), "the refcount table");
    return std::unexpected(std::move(rt).error());
  }
  m_reftable = std::move(*rt);
  // As qemu-img check (check_refblocks): a damaged entry is reported and not
  // counted; stored refcounts are still read through it (stored_refcount).
  for (std::size_t i = 0; i < m_reftable.size(); ++i) {
    std::uint64_t e = m_reftable[i];
    std::uint64_t off = e & k_reft_offset_mask;
    if ((e & k_reft_reserved_mask) != 0) {
      error("reftable entry " + std::to_string(i) + " has reserved bits set");
      continue;
    }
    if ((off & (m_cs - 1)) != 0) {
      error("refcount block " + std::to_string(i) + " is not cluster aligned; refcount table entry corrupted");
      continue;
    }
    const std::uint64_t cluster = off / m_cs;
    if (cluster >= m_ref.size()) {
      error("refcount block " + std::to_string(i) + " is outside image");
      continue;
    }
    if (off == 0) {
      continue;
    }
    inc(off, m_cs);
    if (m_ref[static_cast<std::size_t>(cluster)] != 1) {
      error("refcount block " + std::to_string(i) + " refcount=" + std::to_string(m_ref[static_cast<std::size_t>(cluster)]));
    }
  }
  return {};
}

Result<std::uint64_t> Checker::stored_refcount(std::uint64_t cluster) {
  const unsigned order = m_h.refcount_order;
  const std::uint64_t per_block = m_cs * 8 / (1u << order);
  std::uint64_t ti = cluster / per_block;
  std::uint64_t off = ti < m_reftable.size() ? m_reftable[ti] & k_reft_offset_mask : 0;
  if (off == 0) {
    return 0;
  }
  if ((off & (m_cs - 1)) != 0) {
    // qemu-img check cannot read through it either: a check error per cluster.
    return fail(Errc::corruption, "refcount block " + std::to_string(ti) + " at offset " + std::to_string(off) +
                                      " is not cluster aligned");
  }
  if (m_cached_block.empty() || m_cached_block_off != off) {
    m_cached_block.resize(static_cast<std::size_t>(m_cs));
    if (auto r = read_zero_filled(m_file, m_cached_block, off); !r) {
      m_cached_block.clear();
      return std::unexpected(std::move(r).error());
    }
    m_cached_block_off = off;
  }
  return get_refcount(m_cached_block, cluster % per_block, order);
}

// The snapshot table read as qemu-img check reads it: past the end of the
// file it reads as zeros (so a truncated entry names no L1 table and its
// table length is that of empty entries), and every entry whose fixed part
// does not end inside the file is reported as incomplete.
Result<void> Checker::walk_snapshots() {
  std::uint64_t consumed = 0;
  // The table's length comes from its entries, not from the file's size.
  auto snaps = load_snapshots(read_at(), m_h, k_max_virtual_size, m_path, consumed);
  if (!snaps) {
    if (snaps.error().code() != Errc::corruption) {
      check_error(snaps.error(), "the snapshot table");
      return {};
    }
    error(snaps.error().message());
    return {};
  }
  for (std::size_t i = 0; i < snaps->size(); ++i) {
    if (m_h.snapshots_offset + (*snaps)[i].entry_offset + k_snapshot_header_bytes > m_file_size) {
      error("snapshot table entry " + std::to_string(i) + " is incomplete");
    }
  }
  for (const Snapshot& s : *snaps) {
    UTSUSHI_TRY(walk_l1(s.l1_table_offset, s.l1_size, false));
  }
  inc(m_h.snapshots_offset, consumed);
  return {};
}

Result<Qcow2CheckReport> Checker::run(bool has_bitmaps) {
  inc(0, m_cs);
  UTSUSHI_TRY(walk_l1(m_h.l1_table_offset, m_h.l1_size, true));
  if (m_h.nb_snapshots > 0) {
    UTSUSHI_TRY(walk_snapshots());
  }
  if (auto r = count_refcount_metadata(); !r) {
    return m_report;  // counted as a check error
  }
  if (has_bitmaps) {
    m_report.messages.push_back("Warning: persistent bitmaps are not checked; their clusters may show as leaks");
  }
  const std::uint64_t max_ref =
      m_h.refcount_order >= 6 ? UINT64_MAX : (std::uint64_t{1} << (1u << m_h.refcount_order)) - 1;
  std::uint64_t highest = 0;  // as qemu-img: the last cluster counted or stored, else 0
  for (std::uint64_t c = 0; c < m_ref.size(); ++c) {
    auto sr = stored_refcount(c);
    if (!sr) {
      check_error(sr.error(), "the refcount of cluster " + std::to_string(c));
      continue;
    }
    std::uint64_t stored = *sr;
    std::uint64_t computed = m_ref[static_cast<std::size_t>(c)];
    if (computed > 0 || stored > 0) {
      highest = c;
    }
    if (m_h.refcount_order < 6 && computed > max_ref) {
      error("overflow cluster offset=0x" + fmt_hex(c * m_cs));
    }
    if (stored < computed) {
      error("cluster " + std::to_string(c) + " refcount=" + std::to_string(stored) +
            " reference=" + std::to_string(computed));
    } else if (stored > computed) {
      ++m_report.leaks;
      m_report.messages.push_back("Leaked cluster " + std::to_string(c) + " refcount=" + std::to_string(stored) +
                                  " reference=" + std::to_string(computed));
    }
  }
  for (const Copied& cp : m_copied) {
    auto sr = stored_refcount(cp.cluster);
    if (!sr) {
      continue;  // already counted above
    }
    std::uint64_t stored = *sr;
    bool copied = (cp.entry & k_oflag_copied) != 0;
    if ((stored == 1) != copied) {
      error(std::string("OFLAG_COPIED ") + (cp.l1 ? "L2 cluster" : "data cluster") + ": " +
            (cp.l1 ? "l1_entry=" : "l2_entry=") + fmt_hex(cp.entry) + " refcount=" + std::to_string(stored));
    }
  }
  m_report.image_end_offset = (highest + 1) * m_cs;
  m_report.total_clusters = (m_h.size + m_cs - 1) / m_cs;
  return m_report;
}

}  // namespace

Result<Qcow2CheckReport> check_qcow2(BlockDevice& file, const std::string& name) {
  // Cluster 0 as qemu-img check sees it: zero-filled past the end of a
  // truncated file (a backing file name cut off reads as zeros), tables
  // allowed anywhere (references past the end are reported, not refused).
  auto read = [&file](std::span<std::uint8_t> buf, std::uint64_t offset) {
    return read_zero_filled(file, buf, offset);
  };
  const std::uint64_t largest_cluster0 = std::uint64_t{1} << k_max_cluster_bits;
  auto block = UTSUSHI_TRY(load_header(read, std::max(file.size(), largest_cluster0), name, TableBounds::anywhere));
  Checker checker(file, name, block.header);
  return checker.run(block.extensions.has_bitmaps);
}

Result<Qcow2CheckReport> check_qcow2(const std::string& path) {
  auto raw = UTSUSHI_TRY(open_raw(path, RawOpenOptions{Access::read_only, false}));
  BlockDevice file(std::move(raw));
  return check_qcow2(file, path);
}

}  // namespace utsushi::imagefmt
