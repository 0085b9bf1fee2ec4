#include "utsushi/imagefmt/block_driver.h"

namespace utsushi::imagefmt {

std::string_view extent_type_name(ExtentType t) noexcept {
  switch (t) {
    case ExtentType::data: return "data";
    case ExtentType::zero: return "zero";
    case ExtentType::hole: return "hole";
  }
  return "unknown";
}

bool extent_continues(const Extent& prev, const Extent& next) noexcept {
  if (prev.type != next.type || prev.offset + prev.length != next.offset) {
    return false;
  }
  if (prev.host_offset == k_no_host_offset || next.host_offset == k_no_host_offset) {
    return prev.host_offset == next.host_offset;
  }
  return prev.host_offset + prev.length == next.host_offset;
}

// Defaults: the core never calls these unless the capability says so; they
// answer not_supported so a driver that forgets a capability fails loudly.
Result<void> BlockDriver::pwrite(std::span<const std::uint8_t>, std::uint64_t) {
  return fail(Errc::not_supported, description() + ": " + std::string(format_name()) + " driver cannot write");
}
Result<void> BlockDriver::zero(std::uint64_t, std::uint64_t, ZeroMode) {
  return fail(Errc::not_supported, description() + ": no native zeroing");
}
Result<void> BlockDriver::discard(std::uint64_t, std::uint64_t) {
  return fail(Errc::not_supported, description() + ": no discard");
}
Result<void> BlockDriver::flush() { return {}; }
Result<void> BlockDriver::verify_integrity() { return {}; }
Result<void> BlockDriver::extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) {
  out.push_back({offset, length, ExtentType::data});
  return {};
}

}  // namespace utsushi::imagefmt
