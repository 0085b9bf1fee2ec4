#pragma once
// UsedBlocksFilter: a read-only view of a source disk in which only the used
// ranges hold data. extents() reports those ranges as data and everything else
// as hole; pread() returns the source's bytes inside used ranges and zeros
// elsewhere (free space, however dirty, never reaches an image). Any copier
// that honours extents (copy_device, write_qcow2) therefore copies only used
// blocks with no special path.
// Thread-safety: safe for concurrent use when the device below is.

#include <memory>

#include "utsushi/imagefmt/filter.h"
#include "utsushi/disk/byte_ranges.h"

namespace utsushi::disk {

class UsedBlocksFilter final : public imagefmt::FilterDriver {
 public:
  // `below` must outlive the filter; `used` is clipped to below's size.
  UsedBlocksFilter(imagefmt::BlockDevice& below, const ByteRanges& used);

  imagefmt::Capabilities capabilities() const override;
  [[nodiscard]] Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) override;
  [[nodiscard]] Result<void> pwrite(std::span<const std::uint8_t>, std::uint64_t) override;
  [[nodiscard]] Result<void> extents(std::uint64_t offset, std::uint64_t length, std::vector<imagefmt::Extent>& out) override;

  const ByteRanges& used() const noexcept { return m_used; }

 private:
  ByteRanges m_used;
};

// A BlockDevice over `below` showing only `used`.
std::unique_ptr<imagefmt::BlockDevice> make_used_view(imagefmt::BlockDevice& below, const ByteRanges& used);

}  // namespace utsushi::disk
