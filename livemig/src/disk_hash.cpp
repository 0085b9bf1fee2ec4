#include "utsushi/livemig/disk_hash.h"

#include <xxhash.h>

#include <fmt/core.h>

#include <algorithm>
#include <array>

namespace utsushi::livemig {

namespace {

// The length of the piece of [offset, end) that starts at `offset` and ends
// at the next granule boundary or at `end`.
std::uint64_t piece_length(std::uint64_t offset, std::uint64_t end) noexcept {
  std::uint64_t to_boundary = k_disk_hash_granule - offset % k_disk_hash_granule;
  return std::min(to_boundary, end - offset);
}

// XXH3-128 of `length` zero bytes (length <= one granule); a whole granule's
// is computed once.
XXH128_hash_t zero_content_hash(std::uint64_t length) noexcept {
  static const std::array<std::uint8_t, k_disk_hash_granule> zeros{};
  static const XXH128_hash_t whole = XXH3_128bits(zeros.data(), zeros.size());
  return length == k_disk_hash_granule ? whole : XXH3_128bits(zeros.data(), length);
}

}  // namespace

void DiskWriteHash::add_piece(std::uint64_t offset, std::uint64_t length, std::uint64_t content_low,
                              std::uint64_t content_high) noexcept {
  std::array<std::uint8_t, 32> key;
  store_be64(key.data(), offset);
  store_be64(key.data() + 8, length);
  store_be64(key.data() + 16, content_high);
  store_be64(key.data() + 24, content_low);
  XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  std::uint64_t low = m_low + h.low64;
  m_high += h.high64 + (low < m_low ? 1 : 0);
  m_low = low;
}

void DiskWriteHash::add_data(std::uint64_t offset, std::span<const std::uint8_t> bytes) noexcept {
  std::uint64_t end = offset + bytes.size();
  std::size_t at = 0;
  while (offset < end) {
    std::uint64_t n = piece_length(offset, end);
    XXH128_hash_t c = XXH3_128bits(bytes.data() + at, n);
    add_piece(offset, n, c.low64, c.high64);
    offset += n;
    at += n;
  }
}

void DiskWriteHash::add_zero(std::uint64_t offset, std::uint64_t length) noexcept {
  std::uint64_t end = offset + length;
  while (offset < end) {
    std::uint64_t n = piece_length(offset, end);
    XXH128_hash_t c = zero_content_hash(n);
    add_piece(offset, n, c.low64, c.high64);
    offset += n;
  }
}

void DiskWriteHash::add(const DiskBatch& batch) noexcept {
  std::size_t at = 0;
  for (const auto& r : batch.ranges) {
    if (r.kind == DiskRangeKind::zero) {
      add_zero(r.offset, r.length);
    } else {
      add_data(r.offset, std::span(batch.data).subspan(at, r.length));
      at += r.length;
    }
  }
}

std::string DiskWriteHash::hex() const { return fmt::format("{:016x}{:016x}", m_high, m_low); }

}  // namespace utsushi::livemig
