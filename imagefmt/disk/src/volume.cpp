#include "utsushi/disk/volume.h"

#include <algorithm>

namespace utsushi::disk {

Volume::Volume(imagefmt::BlockDevice& disk, std::uint64_t offset, std::uint64_t length, std::string name)
    : Volume(disk, std::vector<Segment>{{0, offset, length}}, std::move(name)) {}

Volume::Volume(imagefmt::BlockDevice& disk, std::vector<Segment> segments, std::string name)
    : m_disk(disk), m_segments(std::move(segments)), m_name(std::move(name)) {
  for (const Segment& s : m_segments) {
    m_size += s.length;
  }
}

Result<void> Volume::check(std::uint64_t offset, std::uint64_t length, std::string_view what) const {
  std::uint64_t end = 0;
  if (__builtin_add_overflow(offset, length, &end) || end > m_size) {
    return fail(Errc::out_of_range, m_name + ": " + std::string(what) + " at byte " + std::to_string(offset) +
                                        " (+" + std::to_string(length) + ") lies outside the volume (" +
                                        std::to_string(m_size) + " bytes)");
  }
  return {};
}

Result<void> Volume::read(std::span<std::uint8_t> buf, std::uint64_t offset, std::string_view what) {
  UTSUSHI_TRY(check(offset, buf.size(), what));
  std::size_t done = 0;
  for (const Segment& s : m_segments) {
    if (done == buf.size()) {
      break;
    }
    std::uint64_t pos = offset + done;
    if (pos >= s.volume_offset + s.length || pos < s.volume_offset) {
      continue;
    }
    std::uint64_t in_seg = pos - s.volume_offset;
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(s.length - in_seg, buf.size() - done));
    UTSUSHI_TRY_CTX(m_disk.pread(buf.subspan(done, n), s.disk_offset + in_seg), m_name);
    done += n;
  }
  return {};
}

Result<std::vector<std::uint8_t>> Volume::read(std::uint64_t offset, std::size_t length, std::string_view what) {
  std::vector<std::uint8_t> buf(length);
  UTSUSHI_TRY(read(buf, offset, what));
  return buf;
}

ByteRanges Volume::to_disk(const ByteRanges& ranges) const {
  ByteRanges out;
  for (const ByteRange& r : ranges.ranges()) {
    for (const Segment& s : m_segments) {
      std::uint64_t lo = std::max(r.offset, s.volume_offset);
      std::uint64_t hi = std::min(r.end(), s.volume_offset + s.length);
      if (lo < hi) {
        out.add(s.disk_offset + (lo - s.volume_offset), hi - lo);
      }
    }
  }
  return out;
}

}  // namespace utsushi::disk
