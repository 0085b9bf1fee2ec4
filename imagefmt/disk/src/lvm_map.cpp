// LVM2 physical volumes: the label and metadata areas are copied; each
// logical volume whose extents all lie on this PV in linear/striped(1)
// segments is mapped like a partition (its filesystem's used blocks); the
// extents of any other LV on this PV are copied in full; free extents are not
// copied. Layout: lvm2 lib/label/label.h (label_header), lib/format_text/
// layout.h (pv_header, disk_locn, mda_header, raw_locn) and doc/
// lvm2-metadata (the text format, parsed by lvm_text.cpp). LVM's CRC is the
// reflected CRC-32 started at 0xf597a6cf with no final inversion
// (lib/misc/crc.c); label, metadata-area header and metadata text are checked.
#include <fmt/core.h>
#include <zlib.h>

#include <algorithm>

#include "utsushi/disk/lvm_text.h"
#include "decode_util.h"
#include "utsushi/disk/fs_map.h"

namespace utsushi::disk {
namespace {

constexpr std::uint32_t k_initial_crc = 0xf597a6cf;
constexpr std::size_t k_sector = 512;
constexpr std::size_t lh_crc = 16, lh_offset = 20;
constexpr std::size_t pvh_uuid = 0, pvh_device_size = 32, pvh_disk_areas = 40;
constexpr std::size_t k_id_len = 32;
constexpr std::string_view k_mda_magic = " LVM2 x[5A%r0N*>";
constexpr std::size_t mdah_checksum = 0, mdah_magic = 4, mdah_start = 24, mdah_size = 32, mdah_raw_locns = 40;
constexpr std::size_t k_mda_header_size = 512;
static_assert(mdah_raw_locns + 24 <= k_mda_header_size, "the first raw_locn (offset, size, checksum, flags) fits the header");
constexpr std::uint64_t k_max_metadata = 64u << 20;

std::uint32_t lvm_crc(std::uint32_t init, std::span<const std::uint8_t> b) {
  return ~static_cast<std::uint32_t>(::crc32(~init & 0xFFFFFFFFu, b.data(), static_cast<uInt>(b.size())));
}

std::string strip_dashes(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '-'), s.end());
  return s;
}

struct Area {
  std::uint64_t offset, size;
};

[[nodiscard]] Result<std::string> read_metadata_text(Volume& v, const Area& mda) {
  auto hb = UTSUSHI_TRY(v.read(mda.offset, k_mda_header_size, "LVM metadata area header"));
  std::span<const std::uint8_t> h(hb);
  if (!bytes_equal(h, mdah_magic, k_mda_magic)) {
    return fail(Errc::corruption, "LVM: bad metadata area magic");
  }
  if (load_le32(h.data() + mdah_checksum) != lvm_crc(k_initial_crc, h.subspan(4))) {
    return fail(Errc::corruption, "LVM: metadata area header checksum mismatch");
  }
  std::uint64_t start = load_le64(h.data() + mdah_start), size = load_le64(h.data() + mdah_size);
  if (start != mda.offset || size < k_mda_header_size || size > mda.size) {
    return fail(Errc::corruption, "LVM: metadata area header geometry mismatch");
  }
  std::uint64_t off = load_le64(h.data() + mdah_raw_locns), len = load_le64(h.data() + mdah_raw_locns + 8);
  std::uint32_t sum = load_le32(h.data() + mdah_raw_locns + 16);
  if (len == 0 || len > k_max_metadata || off < k_mda_header_size || off >= size) {
    return fail(Errc::corruption, "LVM: no committed metadata");
  }
  // The text area is a ring after the header: a record may wrap to its start.
  std::uint64_t first = std::min(len, size - off);
  auto text = UTSUSHI_TRY(v.read(start + off, static_cast<std::size_t>(first), "LVM metadata"));
  if (first < len) {
    if (len - first > size - k_mda_header_size) {
      return fail(Errc::corruption, "LVM: metadata larger than its area");
    }
    auto rest = UTSUSHI_TRY(v.read(start + k_mda_header_size, static_cast<std::size_t>(len - first), "LVM metadata"));
    text.insert(text.end(), rest.begin(), rest.end());
  }
  if (lvm_crc(k_initial_crc, text) != sum) {
    return fail(Errc::corruption, "LVM: metadata text checksum mismatch");
  }
  std::string s(text.begin(), text.end());
  s.resize(std::min(s.size(), s.find('\0')));  // the record is NUL-terminated
  return s;
}

struct LvSegment {
  std::uint64_t start_extent = 0, extent_count = 0;
  bool mappable = false;  // linear on this PV
  std::uint64_t pe = 0;   // first PV extent when mappable
  std::vector<std::pair<std::string, std::uint64_t>> stripes;  // (pv name, pe)
};

}  // namespace

[[nodiscard]] Result<FsUsage> map_lvm(Volume& volume, int depth) {
  if (volume.segments().size() != 1) {
    return fail(Errc::not_supported, "LVM: a PV inside a multi-segment volume");
  }
  const std::uint64_t disk_base = volume.segments()[0].disk_offset;
  auto head = UTSUSHI_TRY(volume.read(0, 4 * k_sector, "LVM label"));
  std::span<const std::uint8_t> hs(head);
  std::size_t label = 4;
  for (std::size_t s = 0; s < 4; ++s) {
    if (bytes_equal(hs, s * k_sector, "LABELONE") && bytes_equal(hs, s * k_sector + 24, "LVM2 001")) {
      label = s;
      break;
    }
  }
  if (label == 4) {
    return fail(Errc::corruption, "LVM: no label");
  }
  auto lab = hs.subspan(label * k_sector, k_sector);
  if (load_le32(lab.data() + lh_crc) != lvm_crc(k_initial_crc, lab.subspan(lh_offset))) {
    return fail(Errc::corruption, "LVM: label checksum mismatch");
  }
  std::uint32_t pvh_off = load_le32(lab.data() + lh_offset);
  if (pvh_off < 32 || pvh_off + pvh_disk_areas + 16 > k_sector) {
    return fail(Errc::corruption, "LVM: bad PV header offset");
  }
  auto pvh = lab.subspan(pvh_off);
  std::string pv_id(reinterpret_cast<const char*>(pvh.data() + pvh_uuid), k_id_len);
  (void)pvh_device_size;
  // Data areas, then metadata areas, each list ended by a zero entry.
  std::vector<Area> data_areas, mdas;
  std::size_t p = pvh_disk_areas;
  for (auto* list : {&data_areas, &mdas}) {
    for (;;) {
      if (p + 16 > pvh.size()) {
        return fail(Errc::corruption, "LVM: PV header area lists overrun the label sector");
      }
      Area a{load_le64(pvh.data() + p), load_le64(pvh.data() + p + 8)};
      p += 16;
      if (a.offset == 0) {
        break;
      }
      list->push_back(a);
    }
  }
  if (mdas.empty()) {
    return fail(Errc::not_supported, "LVM: PV without a metadata area (metadata is on another PV)");
  }
  FsUsage u;
  u.filesystem = "LVM2_member";
  u.uuid = pv_id;
  u.used.add(0, 4 * k_sector);
  std::string text;
  for (const Area& m : mdas) {
    UTSUSHI_TRY(volume.check(m.offset, m.size, "LVM metadata area"));
    u.used.add(m.offset, m.size);
    if (text.empty()) {
      auto t = read_metadata_text(volume, m);
      if (t) {
        text = std::move(*t);
      } else if (&m == &mdas.back()) {
        return std::unexpected(std::move(t).error());
      }
    }
  }
  auto root = UTSUSHI_TRY(lvm::parse(text));
  if (root->sections.empty()) {
    return fail(Errc::corruption, "LVM: metadata holds no volume group");
  }
  const std::string vg_name = root->sections.front().first;
  const lvm::Node& vg = *root->sections.front().second;
  const std::uint64_t extent = static_cast<std::uint64_t>(UTSUSHI_TRY(vg.number("extent_size"))) * k_sector;
  const lvm::Node* pvs = vg.section("physical_volumes");
  if (!pvs || extent == 0) {
    return fail(Errc::corruption, "LVM: metadata has no physical volumes or extent size");
  }
  std::string pv_name;
  std::uint64_t pe_start = 0, pe_count = 0;
  for (const auto& [name, node] : pvs->sections) {
    if (strip_dashes(UTSUSHI_TRY(node->string("id"))) == pv_id) {
      pv_name = name;
      pe_start = static_cast<std::uint64_t>(UTSUSHI_TRY(node->number("pe_start"))) * k_sector;
      pe_count = static_cast<std::uint64_t>(UTSUSHI_TRY(node->number("pe_count")));
    }
  }
  if (pv_name.empty()) {
    return fail(Errc::corruption, "LVM: this PV is not in its own metadata");
  }
  std::uint64_t pe_bytes = 0, pe_end = 0;
  if (!mul_ok(pe_count, extent, pe_bytes) || !add_ok(pe_start, pe_bytes, pe_end) || pe_end > volume.size()) {
    return fail(Errc::corruption, "LVM: physical extents reach past the end of the PV");
  }
  u.used.add(0, pe_start);  // label, metadata and anything before the first extent

  static const lvm::Node k_no_lvs;
  const lvm::Node* lvs = vg.section("logical_volumes");
  for (const auto& [lv_name, lv] : (lvs ? lvs : &k_no_lvs)->sections) {
    std::vector<LvSegment> segs;
    bool all_mappable = true;
    for (const auto& [seg_name, seg] : lv->sections) {
      if (seg_name.rfind("segment", 0) != 0) {
        continue;
      }
      LvSegment s;
      s.start_extent = static_cast<std::uint64_t>(UTSUSHI_TRY(seg->number("start_extent")));
      s.extent_count = static_cast<std::uint64_t>(UTSUSHI_TRY(seg->number("extent_count")));
      std::string type = UTSUSHI_TRY(seg->string("type"));
      auto st = seg->values.find("stripes");
      if (st != seg->values.end()) {
        for (std::size_t i = 0; i + 1 < st->second.size(); i += 2) {
          if (!st->second[i].is_string() || st->second[i + 1].is_string()) {
            return fail(Errc::corruption, "LVM: bad stripes list in " + lv_name);
          }
          s.stripes.emplace_back(std::get<std::string>(st->second[i].v),
                                 static_cast<std::uint64_t>(std::get<std::int64_t>(st->second[i + 1].v)));
        }
      }
      s.mappable = type == "striped" && s.stripes.size() == 1 && s.stripes[0].first == pv_name;
      if (s.mappable) {
        s.pe = s.stripes[0].second;
      }
      all_mappable = all_mappable && s.mappable;
      segs.push_back(std::move(s));
    }
    std::sort(segs.begin(), segs.end(), [](const LvSegment& a, const LvSegment& b) { return a.start_extent < b.start_extent; });
    // Every extent of this LV that lives on this PV, as PV-relative ranges.
    ByteRanges on_pv;
    for (const LvSegment& s : segs) {
      for (const auto& [pvn, pe] : s.stripes) {
        if (pvn != pv_name) {
          continue;
        }
        // Striped over several PVs the per-PV share is extent_count / stripes;
        // copying extent_count extents is a superset.
        std::uint64_t n = std::min(s.extent_count, pe_count > pe ? pe_count - pe : 0);
        if (pe >= pe_count) {
          return fail(Errc::corruption, "LVM: " + lv_name + " uses extents beyond the PV");
        }
        on_pv.add(pe_start + pe * extent, n * extent);
      }
    }
    std::string name = volume.name() + "/" + vg_name + "/" + lv_name;
    bool contiguous = !segs.empty();
    for (std::size_t i = 0; i < segs.size(); ++i) {
      contiguous = contiguous && segs[i].start_extent == (i == 0 ? 0 : segs[i - 1].start_extent + segs[i - 1].extent_count);
    }
    if (all_mappable && contiguous && depth + 1 <= 2) {
      std::vector<Segment> disk_segs;
      for (const LvSegment& s : segs) {
        if (s.pe + s.extent_count > pe_count) {
          return fail(Errc::corruption, "LVM: " + lv_name + " uses extents beyond the PV");
        }
        disk_segs.push_back({s.start_extent * extent, disk_base + pe_start + s.pe * extent, s.extent_count * extent});
      }
      Volume lv_vol(volume.disk(), std::move(disk_segs), name);
      VolumeMap child = UTSUSHI_TRY(map_volume(lv_vol, depth + 1));
      for (const ByteRange& r : child.used.ranges()) {
        u.used.add(r.offset - disk_base, r.length);
      }
      u.children.push_back(std::move(child));
    } else {
      VolumeMap child;
      child.name = name;
      child.filesystem = "unknown";
      child.full_copy = true;
      child.note = "LV segments are not linear on this PV (striped, mirrored, thin, snapshot or on other PVs)";
      child.size = on_pv.total();
      for (const ByteRange& r : on_pv.ranges()) {
        child.used.add(disk_base + r.offset, r.length);
      }
      u.used.add(on_pv);
      u.children.push_back(std::move(child));
    }
  }
  (void)data_areas;
  u.fs_used_bytes = 0;
  for (const VolumeMap& c : u.children) {
    u.fs_used_bytes += c.full_copy ? c.used.total() : c.fs_used_bytes;
  }
  return u;
}

}  // namespace utsushi::disk
