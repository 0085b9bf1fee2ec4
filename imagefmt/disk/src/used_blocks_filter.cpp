#include "utsushi/disk/used_blocks_filter.h"

#include <algorithm>
#include <cstring>

namespace utsushi::disk {
namespace {

// The first range whose end lies after `offset`.
std::vector<ByteRange>::const_iterator first_after(const std::vector<ByteRange>& rs, std::uint64_t offset) {
  return std::upper_bound(rs.begin(), rs.end(), offset,
                          [](std::uint64_t off, const ByteRange& r) { return off < r.end(); });
}

}  // namespace

UsedBlocksFilter::UsedBlocksFilter(imagefmt::BlockDevice& below, const ByteRanges& used)
    : FilterDriver(below), m_used(used.clipped(below.size())) {
  (void)m_used.ranges();  // normalise now: later calls are const reads from many threads
}

imagefmt::Capabilities UsedBlocksFilter::capabilities() const {
  imagefmt::Capabilities c = FilterDriver::capabilities();
  c.can_write = false;
  c.can_zero = false;
  c.can_discard = false;
  c.can_flush = false;
  c.can_extents = true;
  c.thread_safe = true;
  c.request_alignment = 1;
  c.max_transfer = 0;
  return c;
}

Result<void> UsedBlocksFilter::pwrite(std::span<const std::uint8_t>, std::uint64_t) {
  return fail(Errc::permission_denied, description() + ": the capture source is read-only");
}

Result<void> UsedBlocksFilter::pread(std::span<std::uint8_t> buf, std::uint64_t offset) {
  const auto& rs = m_used.ranges();
  const std::uint64_t end = offset + buf.size();
  std::uint64_t pos = offset;
  for (auto it = first_after(rs, offset); pos < end; ++it) {
    std::uint64_t data_start = it == rs.end() ? end : std::min(std::max(it->offset, pos), end);
    if (data_start > pos) {
      std::memset(buf.data() + (pos - offset), 0, static_cast<std::size_t>(data_start - pos));
      pos = data_start;
    }
    if (it == rs.end() || pos >= end) {
      break;
    }
    std::uint64_t data_end = std::min(it->end(), end);
    UTSUSHI_TRY(below().pread(buf.subspan(static_cast<std::size_t>(pos - offset),
                                          static_cast<std::size_t>(data_end - pos)),
                              pos));
    pos = data_end;
  }
  return {};
}

Result<void> UsedBlocksFilter::extents(std::uint64_t offset, std::uint64_t length,
                                       std::vector<imagefmt::Extent>& out) {
  const auto& rs = m_used.ranges();
  const std::uint64_t end = offset + length;
  std::uint64_t pos = offset;
  for (auto it = first_after(rs, offset); pos < end; ++it) {
    std::uint64_t data_start = it == rs.end() ? end : std::min(std::max(it->offset, pos), end);
    if (data_start > pos) {
      out.push_back({pos, data_start - pos, imagefmt::ExtentType::hole});
      pos = data_start;
    }
    if (it == rs.end() || pos >= end) {
      break;
    }
    std::uint64_t data_end = std::min(it->end(), end);
    out.push_back({pos, data_end - pos, imagefmt::ExtentType::data});
    pos = data_end;
  }
  return {};
}

std::unique_ptr<imagefmt::BlockDevice> make_used_view(imagefmt::BlockDevice& below, const ByteRanges& used) {
  return std::make_unique<imagefmt::BlockDevice>(std::make_unique<UsedBlocksFilter>(below, used));
}

}  // namespace utsushi::disk
