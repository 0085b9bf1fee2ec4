#pragma once
// Little- and big-endian field readers for on-disk decoders, over
// common/endian.h. Each takes a span and an offset; the caller has checked
// that the field lies inside the span (decoders check a structure's size
// once, then read fixed offsets).

#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "utsushi/common/endian.h"

namespace utsushi::p2v {

inline std::uint8_t le8(std::span<const std::uint8_t> b, std::size_t off) { return b[off]; }
inline std::uint16_t le16(std::span<const std::uint8_t> b, std::size_t off) { return load_le16(b.data() + off); }
inline std::uint32_t le32(std::span<const std::uint8_t> b, std::size_t off) { return load_le32(b.data() + off); }
inline std::uint64_t le64(std::span<const std::uint8_t> b, std::size_t off) { return load_le64(b.data() + off); }
inline std::uint16_t be16(std::span<const std::uint8_t> b, std::size_t off) { return load_be16(b.data() + off); }
inline std::uint32_t be32(std::span<const std::uint8_t> b, std::size_t off) { return load_be32(b.data() + off); }
inline std::uint64_t be64(std::span<const std::uint8_t> b, std::size_t off) { return load_be64(b.data() + off); }
inline void put_le32(std::span<std::uint8_t> b, std::size_t off, std::uint32_t v) { store_le32(b.data() + off, v); }
inline bool bytes_equal(std::span<const std::uint8_t> b, std::size_t off, std::string_view s) {
  return off + s.size() <= b.size() && std::memcmp(b.data() + off, s.data(), s.size()) == 0;
}
// A fixed-size text field, cut at the first NUL, trailing spaces removed.
inline std::string text_field(std::span<const std::uint8_t> b, std::size_t off, std::size_t len) {
  std::string s;
  for (std::size_t i = 0; i < len && b[off + i] != 0; ++i) {
    s.push_back(static_cast<char>(b[off + i]));
  }
  while (!s.empty() && s.back() == ' ') {
    s.pop_back();
  }
  return s;
}
// "0123...-..." lower-case UUID text from 16 raw bytes in big-endian order (ext4, XFS, swap).
std::string uuid_text(std::span<const std::uint8_t> b, std::size_t off);

// Checked arithmetic for offsets read from disk: false on overflow.
inline bool add_ok(std::uint64_t a, std::uint64_t b, std::uint64_t& out) { return !__builtin_add_overflow(a, b, &out); }
inline bool mul_ok(std::uint64_t a, std::uint64_t b, std::uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, with no initial or
// final inversion (Linux's crc32c(seed, p, len); ext4's and XFS's building block).
std::uint32_t crc32c_update(std::uint32_t crc, std::span<const std::uint8_t> data) noexcept;
// The standard CRC-32C: init ~0, final inversion (XFS stores this, iSCSI's check value).
inline std::uint32_t crc32c(std::span<const std::uint8_t> data) noexcept { return ~crc32c_update(~0u, data); }
// CRC-16 (ANSI, reflected polynomial 0xA001), no inversion (Linux lib/crc16.c; ext4 gdt_csum).
std::uint16_t crc16_update(std::uint16_t crc, std::span<const std::uint8_t> data) noexcept;

}  // namespace utsushi::p2v
