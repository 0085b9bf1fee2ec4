#include "utsushi/imagefmt/filter.h"

namespace utsushi::imagefmt {

Capabilities FilterDriver::capabilities() const {
  // The device below already emulates and checks; expose everything it offers
  // and let it do the work, including serialisation.
  Capabilities c = m_below.capabilities();
  c.can_zero = c.can_write;
  c.can_discard = c.can_write;
  c.can_extents = true;
  c.thread_safe = true;
  c.request_alignment = 1;
  return c;
}

Result<void> FilterDriver::extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) {
  auto list = UTSUSHI_TRY(m_below.extents(offset, length));
  out.insert(out.end(), list.begin(), list.end());
  return {};
}

Result<std::unique_ptr<BlockDriver>> WindowFilter::create(BlockDevice& below, std::uint64_t offset,
                                                          std::uint64_t length, std::string description) {
  UTSUSHI_TRY_CTX(below.check_range(offset, length, "window"), description);
  return std::unique_ptr<BlockDriver>(new WindowFilter(below, offset, length, std::move(description)));
}

Result<std::unique_ptr<BlockDriver>> WindowFilter::create(std::unique_ptr<BlockDevice> below, std::uint64_t offset,
                                                          std::uint64_t length, std::string description) {
  UTSUSHI_TRY_CTX(below->check_range(offset, length, "window"), description);
  return std::unique_ptr<BlockDriver>(new WindowFilter(std::move(below), offset, length, std::move(description)));
}

Result<void> WindowFilter::extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) {
  auto list = UTSUSHI_TRY(below().extents(offset + m_offset, length));
  for (Extent e : list) {
    e.offset -= m_offset;
    out.push_back(e);
  }
  return {};
}

}  // namespace utsushi::imagefmt
