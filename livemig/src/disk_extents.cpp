#include "utsushi/livemig/disk_extents.h"

#include <algorithm>
#include <functional>

namespace utsushi::livemig {

namespace {

struct Interval {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

// The extents of `map` that `chosen` accepts, as intervals (adjacent ones joined).
std::vector<Interval> select(std::span<const NbdExtent> map, const std::function<bool(std::uint32_t)>& chosen) {
  std::vector<Interval> out;
  for (const auto& e : map) {
    if (e.length == 0 || !chosen(e.flags)) {
      continue;
    }
    std::uint64_t end = e.offset + e.length;
    if (!out.empty() && out.back().end == e.offset) {
      out.back().end = end;
    } else {
      out.push_back({e.offset, end});
    }
  }
  return out;
}

void append(std::vector<DiskRange>& out, std::uint64_t begin, std::uint64_t end, DiskRangeKind kind) {
  if (!out.empty() && out.back().kind == kind && out.back().offset + out.back().length == begin) {
    out.back().length += end - begin;
  } else {
    out.push_back({begin, end - begin, kind});
  }
}

// Cuts `chosen` by the extents of `allocation` into data and zero ranges.
// Both are in offset order, so one walk over each suffices.
std::vector<DiskRange> classify(const std::vector<Interval>& chosen, std::span<const NbdExtent> allocation) {
  std::vector<DiskRange> out;
  std::size_t a = 0;
  for (const auto& iv : chosen) {
    while (a < allocation.size() && allocation[a].offset + allocation[a].length <= iv.begin) {
      ++a;
    }
    std::uint64_t at = iv.begin;
    for (std::size_t i = a; i < allocation.size() && at < iv.end; ++i) {
      const auto& e = allocation[i];
      std::uint64_t end = std::min(iv.end, e.offset + e.length);
      if (end <= at) {
        continue;
      }
      at = std::max(at, e.offset);
      bool zero = (e.flags & k_nbd_state_zero) != 0;
      append(out, at, end, zero ? DiskRangeKind::zero : DiskRangeKind::data);
      at = end;
    }
  }
  return out;
}

}  // namespace

std::vector<DiskRange> top_image_ranges(std::span<const NbdExtent> depth, std::span<const NbdExtent> allocation) {
  return classify(select(depth, [](std::uint32_t d) { return d == k_depth_top; }), allocation);
}

std::vector<DiskRange> dirty_ranges(std::span<const NbdExtent> dirty, std::span<const NbdExtent> allocation) {
  return classify(select(dirty, [](std::uint32_t f) { return (f & k_nbd_state_dirty) != 0; }), allocation);
}

std::uint64_t data_bytes(std::span<const DiskRange> ranges) noexcept {
  std::uint64_t n = 0;
  for (const auto& r : ranges) {
    n += r.kind == DiskRangeKind::data ? r.length : 0;
  }
  return n;
}

}  // namespace utsushi::livemig
