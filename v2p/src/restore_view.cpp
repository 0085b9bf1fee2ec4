#include "utsushi/v2p/restore_view.h"

#include <algorithm>
#include <cstring>

#include "utsushi/disk/layout_ops.h"

namespace utsushi::v2p {
namespace {

using imagefmt::Extent;
using imagefmt::ExtentType;

imagefmt::BlockDevice* staged_source(const ContentSources& s, unsigned number) {
  for (const auto& [n, dev] : s.staged) {
    if (n == number) {
      return dev;
    }
  }
  return nullptr;
}

// Splits `in` so that [r.offset, r.end()) is one data extent.
std::vector<Extent> paint_data(const std::vector<Extent>& in, const disk::ByteRange& r) {
  std::vector<Extent> out;
  for (const Extent& e : in) {
    const std::uint64_t lo = std::max(e.offset, r.offset), hi = std::min(e.offset + e.length, r.end());
    if (lo >= hi || e.type == ExtentType::data) {
      out.push_back(e);
      continue;
    }
    if (lo > e.offset) {
      out.push_back({e.offset, lo - e.offset, e.type});
    }
    out.push_back({lo, hi - lo, ExtentType::data});
    if (hi < e.offset + e.length) {
      out.push_back({hi, e.offset + e.length - hi, e.type});
    }
  }
  return out;
}

}  // namespace

std::vector<ViewSegment> view_segments(const LayoutPlan& plan, const ContentSources& sources) {
  std::vector<ViewSegment> parts;
  std::vector<const PartitionMove*> moves;
  for (const PartitionMove& m : plan.partitions) {
    moves.push_back(&m);
  }
  std::sort(moves.begin(), moves.end(), [](auto* a, auto* b) { return a->dst_offset < b->dst_offset; });
  // The head (boot code, the GPT's primary structures, the gap before the
  // first partition) comes from the image; partitions before R never move.
  if (!moves.empty() && moves.front()->dst_offset > 0) {
    parts.push_back({0, moves.front()->dst_offset, ViewSegment::Kind::content, sources.image, 0});
  }
  for (const PartitionMove* m : moves) {
    imagefmt::BlockDevice* staged = staged_source(sources, m->number);
    std::uint64_t copied = 0;
    if (staged) {
      copied = std::min(m->dst_length, staged->size());
      parts.push_back({m->dst_offset, copied, ViewSegment::Kind::content, staged, 0});
    } else if (m->action != FsAction::recreate && m->action != FsAction::remake_swap) {
      copied = std::min(m->src_length, m->dst_length);
      parts.push_back({m->dst_offset, copied, ViewSegment::Kind::content, sources.image, m->src_offset});
    }
    if (copied < m->dst_length) {
      parts.push_back({m->dst_offset + copied, m->dst_length - copied, ViewSegment::Kind::zero, nullptr, 0});
    }
  }
  // Free space between and after the partitions.
  std::vector<ViewSegment> all;
  std::uint64_t pos = 0;
  for (const ViewSegment& s : parts) {
    if (s.offset > pos) {
      all.push_back({pos, s.offset - pos, ViewSegment::Kind::free, nullptr, 0});
    }
    if (s.length > 0) {
      all.push_back(s);
    }
    pos = std::max(pos, s.end());
  }
  if (pos < plan.target_size) {
    all.push_back({pos, plan.target_size - pos, ViewSegment::Kind::free, nullptr, 0});
  }
  return all;
}

RestoreView::RestoreView(std::vector<ViewSegment> segments, std::vector<disk::SectorWrite> table, std::uint64_t size,
                         std::uint32_t sector_size)
    : m_segments(std::move(segments)), m_table(std::move(table)), m_size(size) {
  disk::ByteRanges sectors;
  for (const disk::SectorWrite& w : m_table) {
    std::uint64_t start = w.offset / sector_size * sector_size;
    std::uint64_t end = (w.offset + w.bytes.size() + sector_size - 1) / sector_size * sector_size;
    sectors.add(start, std::min(end, m_size) - start);
  }
  m_table_sectors = sectors.ranges();
}

imagefmt::Capabilities RestoreView::capabilities() const {
  imagefmt::Capabilities c;
  c.can_extents = true;
  c.thread_safe = true;
  c.request_alignment = 1;
  c.preferred_io_size = 4u << 20;
  return c;
}

Result<void> RestoreView::pread(std::span<std::uint8_t> buf, std::uint64_t offset) {
  const std::uint64_t end = offset + buf.size();
  auto it = std::upper_bound(m_segments.begin(), m_segments.end(), offset,
                             [](std::uint64_t off, const ViewSegment& s) { return off < s.end(); });
  for (; it != m_segments.end() && it->offset < end; ++it) {
    const std::uint64_t lo = std::max(it->offset, offset), hi = std::min(it->end(), end);
    auto part = buf.subspan(static_cast<std::size_t>(lo - offset), static_cast<std::size_t>(hi - lo));
    if (it->kind == ViewSegment::Kind::content) {
      UTSUSHI_TRY(it->source->pread(part, it->source_offset + (lo - it->offset)));
    } else {
      std::memset(part.data(), 0, part.size());
    }
  }
  for (const disk::SectorWrite& w : m_table) {
    const std::uint64_t lo = std::max(w.offset, offset), hi = std::min(w.offset + w.bytes.size(), end);
    if (lo < hi) {
      std::memcpy(buf.data() + (lo - offset), w.bytes.data() + (lo - w.offset), static_cast<std::size_t>(hi - lo));
    }
  }
  return {};
}

Result<void> RestoreView::extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) {
  const std::uint64_t end = offset + length;
  std::vector<Extent> list;
  auto it = std::upper_bound(m_segments.begin(), m_segments.end(), offset,
                             [](std::uint64_t off, const ViewSegment& s) { return off < s.end(); });
  for (; it != m_segments.end() && it->offset < end; ++it) {
    const std::uint64_t lo = std::max(it->offset, offset), hi = std::min(it->end(), end);
    if (it->kind == ViewSegment::Kind::content) {
      const std::uint64_t shift = it->source_offset + (lo - it->offset);
      auto src = UTSUSHI_TRY(it->source->extents(shift, hi - lo));
      for (Extent e : src) {
        e.offset = e.offset - shift + lo;
        e.type = e.type == ExtentType::data ? ExtentType::data : ExtentType::zero;
        e.host_offset = imagefmt::k_no_host_offset;
        list.push_back(e);
      }
    } else {
      list.push_back({lo, hi - lo, it->kind == ViewSegment::Kind::zero ? ExtentType::zero : ExtentType::hole});
    }
  }
  for (const disk::ByteRange& r : m_table_sectors) {
    if (r.offset < end && r.end() > offset) {
      list = paint_data(list, r);
    }
  }
  out.insert(out.end(), list.begin(), list.end());
  return {};
}

Result<std::unique_ptr<imagefmt::BlockDevice>> make_restore_view(const LayoutPlan& plan, const ContentSources& sources) {
  std::vector<disk::SectorWrite> table;
  if (plan.target.kind != disk::TableKind::none) {
    table = UTSUSHI_TRY(disk::encode_partition_table(plan.target));
  }
  return std::make_unique<imagefmt::BlockDevice>(std::make_unique<RestoreView>(
      view_segments(plan, sources), std::move(table), plan.target_size, plan.target.sector_size));
}

}  // namespace utsushi::v2p
