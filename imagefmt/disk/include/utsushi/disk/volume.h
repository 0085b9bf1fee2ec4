#pragma once
// Volume: a read-only view of a partition or logical volume on the source
// disk, as one or more segments of the disk laid end to end (a partition has
// one; an LV one per LVM segment). Filesystem decoders read through it, so
// every offset and length they take from disk is checked against the volume
// before any I/O, and used ranges they report (volume-relative) are translated
// back to disk offsets by to_disk().

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "utsushi/imagefmt/block_device.h"
#include "utsushi/disk/byte_ranges.h"

namespace utsushi::disk {

struct Segment {
  std::uint64_t volume_offset = 0;  // where the segment starts in the volume
  std::uint64_t disk_offset = 0;    // where it is on the disk
  std::uint64_t length = 0;
};

class Volume {
 public:
  // One contiguous range of `disk`; the caller has checked it lies inside.
  // `disk` must outlive the volume.
  Volume(imagefmt::BlockDevice& disk, std::uint64_t offset, std::uint64_t length, std::string name);
  // Segments must be in volume order, contiguous from 0 and inside `disk`.
  Volume(imagefmt::BlockDevice& disk, std::vector<Segment> segments, std::string name);

  std::uint64_t size() const noexcept { return m_size; }
  const std::string& name() const noexcept { return m_name; }
  const std::vector<Segment>& segments() const noexcept { return m_segments; }
  imagefmt::BlockDevice& disk() noexcept { return m_disk; }

  // Reads [offset, offset + buf.size()) of the volume. out_of_range (naming
  // the volume and `what`) when the range overflows or leaves the volume;
  // I/O errors from the disk otherwise.
  [[nodiscard]] Result<void> read(std::span<std::uint8_t> buf, std::uint64_t offset, std::string_view what);
  [[nodiscard]] Result<std::vector<std::uint8_t>> read(std::uint64_t offset, std::size_t length, std::string_view what);
  // Checks [offset, offset + length) lies inside the volume (no I/O).
  [[nodiscard]] Result<void> check(std::uint64_t offset, std::uint64_t length, std::string_view what) const;

  // Volume-relative ranges to disk offsets.
  ByteRanges to_disk(const ByteRanges& ranges) const;

 private:
  imagefmt::BlockDevice& m_disk;
  std::vector<Segment> m_segments;
  std::uint64_t m_size = 0;
  std::string m_name;
};

}  // namespace utsushi::disk
