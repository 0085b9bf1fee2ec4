#include "utsushi/imagefmt/block_device.h"

#include <algorithm>
#include <vector>

namespace utsushi::imagefmt {
namespace {

constexpr std::uint64_t k_default_chunk = 32u << 20;  // cap on one driver request
constexpr std::size_t k_zero_buffer_size = 1u << 20;

const std::vector<std::uint8_t>& zero_buffer() {
  static const std::vector<std::uint8_t> zeros(k_zero_buffer_size, 0);
  return zeros;
}

std::uint64_t align_down(std::uint64_t v, std::uint64_t a) { return v & ~(a - 1); }
std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return align_down(v + a - 1, a); }

}  // namespace

BlockDevice::BlockDevice(std::unique_ptr<BlockDriver> driver)
    : m_driver(std::move(driver)), m_caps(m_driver->capabilities()), m_size(m_driver->size()) {
  if (m_caps.request_alignment == 0 || (m_caps.request_alignment & (m_caps.request_alignment - 1)) != 0) {
    m_caps.request_alignment = 1;  // a driver bug; treat as byte-addressable
  }
  m_chunk = k_default_chunk;
  if (m_caps.max_transfer != 0) {
    m_chunk = std::min<std::uint64_t>(m_chunk, m_caps.max_transfer);
  }
  m_chunk = std::max<std::uint64_t>(align_down(m_chunk, m_caps.request_alignment), m_caps.request_alignment);
}

Result<void> BlockDevice::check_range(std::uint64_t offset, std::uint64_t length, std::string_view op) const {
  if (offset > m_size || length > m_size - offset) {
    return fail(Errc::out_of_range, description() + ": " + std::string(op) + " of " + std::to_string(length) +
                                        " bytes at offset " + std::to_string(offset) + " is beyond the end (size " +
                                        std::to_string(m_size) + ")");
  }
  return {};
}

Result<void> BlockDevice::require_writable(std::string_view op) const {
  if (!m_caps.can_write) {
    return fail(Errc::permission_denied, description() + ": " + std::string(op) + " on a read-only device");
  }
  return {};
}

std::unique_lock<std::mutex> BlockDevice::maybe_lock() {
  if (m_caps.thread_safe) {
    return {};
  }
  return std::unique_lock(m_driver_mutex);
}

Result<void> BlockDevice::read_aligned(std::span<std::uint8_t> buf, std::uint64_t offset) {
  while (!buf.empty()) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), m_chunk));
    {
      auto lock = maybe_lock();
      UTSUSHI_TRY(m_driver->pread(buf.first(n), offset));
    }
    buf = buf.subspan(n);
    offset += n;
  }
  return {};
}

Result<void> BlockDevice::write_aligned(std::span<const std::uint8_t> buf, std::uint64_t offset) {
  while (!buf.empty()) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), m_chunk));
    {
      auto lock = maybe_lock();
      UTSUSHI_TRY(m_driver->pwrite(buf.first(n), offset));
    }
    buf = buf.subspan(n);
    offset += n;
  }
  return {};
}

// Reads the aligned superset of the range into a bounce buffer and copies out.
Result<void> BlockDevice::read_unaligned(std::span<std::uint8_t> buf, std::uint64_t offset) {
  const std::uint64_t a = m_caps.request_alignment;
  std::uint64_t start = align_down(offset, a);
  std::uint64_t end = std::min(align_up(offset + buf.size(), a), align_up(m_size, a));
  std::vector<std::uint8_t> bounce(static_cast<std::size_t>(end - start));
  UTSUSHI_TRY(read_aligned(bounce, start));
  std::copy_n(bounce.begin() + static_cast<std::ptrdiff_t>(offset - start), buf.size(), buf.begin());
  return {};
}

// Read-modify-write of the aligned blocks at the unaligned head and tail.
Result<void> BlockDevice::write_unaligned(std::span<const std::uint8_t> buf, std::uint64_t offset) {
  const std::uint64_t a = m_caps.request_alignment;
  std::lock_guard rmw(m_rmw_mutex);
  std::uint64_t start = align_down(offset, a);
  std::uint64_t end = align_up(offset + buf.size(), a);
  std::vector<std::uint8_t> block(static_cast<std::size_t>(end - start));
  // Only the first and last blocks need their old contents.
  UTSUSHI_TRY(read_aligned(std::span(block).first(static_cast<std::size_t>(a)), start));
  if (end - start > a) {
    UTSUSHI_TRY(read_aligned(std::span(block).last(static_cast<std::size_t>(a)), end - a));
  }
  std::copy(buf.begin(), buf.end(), block.begin() + static_cast<std::ptrdiff_t>(offset - start));
  return write_aligned(block, start);
}

Result<void> BlockDevice::pread(std::span<std::uint8_t> buf, std::uint64_t offset) {
  UTSUSHI_TRY(check_range(offset, buf.size(), "read"));
  if (buf.empty()) {
    return {};
  }
  const std::uint64_t a = m_caps.request_alignment;
  if (a > 1 && (offset % a != 0 || buf.size() % a != 0)) {
    return read_unaligned(buf, offset);
  }
  return read_aligned(buf, offset);
}

Result<void> BlockDevice::pwrite(std::span<const std::uint8_t> buf, std::uint64_t offset) {
  UTSUSHI_TRY(require_writable("write"));
  UTSUSHI_TRY(check_range(offset, buf.size(), "write"));
  if (buf.empty()) {
    return {};
  }
  const std::uint64_t a = m_caps.request_alignment;
  if (a > 1 && (offset % a != 0 || buf.size() % a != 0)) {
    return write_unaligned(buf, offset);
  }
  return write_aligned(buf, offset);
}

Result<void> BlockDevice::emulate_zero(std::uint64_t offset, std::uint64_t length) {
  const auto& zeros = zero_buffer();
  while (length > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(length, zeros.size()));
    UTSUSHI_TRY(pwrite(std::span(zeros).first(n), offset));
    offset += n;
    length -= n;
  }
  return {};
}

Result<void> BlockDevice::zero(std::uint64_t offset, std::uint64_t length, ZeroMode mode) {
  UTSUSHI_TRY(require_writable("zero"));
  UTSUSHI_TRY(check_range(offset, length, "zero"));
  if (length == 0) {
    return {};
  }
  const std::uint64_t a = m_caps.request_alignment;
  if (m_caps.can_zero && offset % a == 0 && length % a == 0) {
    Result<void> r;
    {
      auto lock = maybe_lock();
      r = m_driver->zero(offset, length, mode);
    }
    if (r || r.error().code() != Errc::not_supported) {
      return r;
    }
  }
  return emulate_zero(offset, length);
}

Result<void> BlockDevice::discard(std::uint64_t offset, std::uint64_t length) {
  UTSUSHI_TRY(require_writable("discard"));
  UTSUSHI_TRY(check_range(offset, length, "discard"));
  const std::uint64_t a = m_caps.request_alignment;
  if (!m_caps.can_discard || length == 0) {
    return {};
  }
  // Discard whole aligned blocks only; partial blocks are left as they are.
  std::uint64_t start = align_up(offset, a);
  std::uint64_t end = align_down(offset + length, a);
  if (end <= start) {
    return {};
  }
  auto lock = maybe_lock();
  auto r = m_driver->discard(start, end - start);
  if (!r && r.error().code() == Errc::not_supported) {
    return {};
  }
  return r;
}

Result<void> BlockDevice::flush() {
  if (!m_caps.can_write || !m_caps.can_flush) {
    return {};
  }
  auto lock = maybe_lock();
  return m_driver->flush();
}

Result<void> BlockDevice::verify_integrity() {
  auto lock = maybe_lock();
  return m_driver->verify_integrity();
}

Result<std::vector<Extent>> BlockDevice::extents(std::uint64_t offset, std::uint64_t length) {
  UTSUSHI_TRY(check_range(offset, length, "extents"));
  std::vector<Extent> result;
  if (length == 0) {
    return result;
  }
  if (!m_caps.can_extents) {
    result.push_back({offset, length, ExtentType::data});
    return result;
  }
  const std::uint64_t end = offset + length;
  std::uint64_t pos = offset;
  std::vector<Extent> batch;
  while (pos < end) {
    batch.clear();
    {
      auto lock = maybe_lock();
      UTSUSHI_TRY(m_driver->extents(pos, end - pos, batch));
    }
    if (batch.empty() || batch.front().offset != pos) {
      return fail(Errc::internal, description() + ": " + std::string(format_name()) +
                                      " driver returned extents not starting at offset " + std::to_string(pos));
    }
    for (const Extent& e : batch) {
      if (e.offset != pos || e.length == 0) {
        return fail(Errc::internal, description() + ": " + std::string(format_name()) +
                                        " driver returned non-contiguous extents at offset " + std::to_string(pos));
      }
      Extent clipped{pos, std::min(e.length, end - pos), e.type, e.host_offset};
      if (!result.empty() && extent_continues(result.back(), clipped)) {
        result.back().length += clipped.length;
      } else {
        result.push_back(clipped);
      }
      std::uint64_t len = clipped.length;
      pos += len;
      if (pos >= end) {
        break;
      }
    }
  }
  return result;
}

}  // namespace utsushi::imagefmt
