#pragma once
// Internal: helpers every on-disk decoder of this library uses besides byte
// order (common/endian.h). Callers check that a field lies inside its span
// first: decoders check a structure's size once, then read fixed offsets.

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "utsushi/common/endian.h"

namespace utsushi::disk {

// Whether the bytes at `off` equal `s` (false when they would leave `b`).
inline bool bytes_equal(std::span<const std::uint8_t> b, std::size_t off, std::string_view s) {
  return off <= b.size() && s.size() <= b.size() - off && std::memcmp(b.data() + off, s.data(), s.size()) == 0;
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

// Checked arithmetic for offsets and sizes read from disk: false on overflow.
[[nodiscard]] inline bool add_ok(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return !__builtin_add_overflow(a, b, &out);
}
[[nodiscard]] inline bool mul_ok(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

}  // namespace utsushi::disk
