#pragma once
// ByteRanges: a set of byte ranges [offset, offset + length) kept sorted and
// merged. The currency of every used-block map: a map lists the bytes that
// must be copied, relative to the start of the volume it describes.

#include <cstdint>
#include <vector>

namespace utsushi::disk {

struct ByteRange {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint64_t end() const noexcept { return offset + length; }
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

class ByteRanges {
 public:
  // Adds [offset, offset + length); empty ranges are ignored. Cheap: ranges are
  // appended and merged lazily. The caller guarantees offset + length does not
  // overflow (every map checks its ranges against the volume size first).
  void add(std::uint64_t offset, std::uint64_t length);
  void add(const ByteRanges& other, std::uint64_t shift = 0);
  // Sorted, non-overlapping, non-adjacent ranges.
  const std::vector<ByteRange>& ranges() const;
  std::uint64_t total() const;
  bool empty() const { return ranges().empty(); }
  // Whether every byte of [offset, offset + length) is in the set.
  bool contains(std::uint64_t offset, std::uint64_t length) const;
  // The set clipped to [0, limit).
  ByteRanges clipped(std::uint64_t limit) const;

 private:
  void normalize() const;
  mutable std::vector<ByteRange> m_ranges;
  mutable bool m_dirty = false;
};

}  // namespace utsushi::disk
