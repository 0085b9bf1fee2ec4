#include "utsushi/disk/byte_ranges.h"

#include <algorithm>

namespace utsushi::disk {

void ByteRanges::add(std::uint64_t offset, std::uint64_t length) {
  if (length == 0) {
    return;
  }
  if (!m_dirty && !m_ranges.empty() && m_ranges.back().end() == offset) {
    m_ranges.back().length += length;  // the common case: bitmaps walked in order
    return;
  }
  if (!m_ranges.empty() && offset < m_ranges.back().end()) {
    m_dirty = true;
  }
  m_ranges.push_back({offset, length});
}

void ByteRanges::add(const ByteRanges& other, std::uint64_t shift) {
  for (const ByteRange& r : other.ranges()) {
    add(r.offset + shift, r.length);
  }
}

void ByteRanges::normalize() const {
  if (!m_dirty) {
    return;
  }
  std::sort(m_ranges.begin(), m_ranges.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> out;
  out.reserve(m_ranges.size());
  for (const ByteRange& r : m_ranges) {
    if (!out.empty() && r.offset <= out.back().end()) {
      out.back().length = std::max(out.back().end(), r.end()) - out.back().offset;
    } else {
      out.push_back(r);
    }
  }
  m_ranges = std::move(out);
  m_dirty = false;
}

const std::vector<ByteRange>& ByteRanges::ranges() const {
  normalize();
  return m_ranges;
}

std::uint64_t ByteRanges::total() const {
  std::uint64_t sum = 0;
  for (const ByteRange& r : ranges()) {
    sum += r.length;
  }
  return sum;
}

bool ByteRanges::contains(std::uint64_t offset, std::uint64_t length) const {
  const auto& rs = ranges();
  auto it = std::upper_bound(rs.begin(), rs.end(), offset,
                             [](std::uint64_t off, const ByteRange& r) { return off < r.offset; });
  if (it == rs.begin()) {
    return length == 0;
  }
  --it;
  return offset >= it->offset && offset + length <= it->end();
}

ByteRanges ByteRanges::clipped(std::uint64_t limit) const {
  ByteRanges out;
  for (const ByteRange& r : ranges()) {
    if (r.offset >= limit) {
      break;
    }
    out.add(r.offset, std::min(r.end(), limit) - r.offset);
  }
  return out;
}

}  // namespace utsushi::disk
