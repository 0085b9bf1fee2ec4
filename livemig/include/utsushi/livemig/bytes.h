#pragma once
// Byte-level helpers shared by every livemig codec: big-endian integers (QEMU
// stream, livemig frames), unsigned LEB128 varints (livemig tokens), and a
// bounds-checked cursor over a span whose every read reports truncation as an
// Errc::corruption error instead of reading past the end.

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/endian.h"
#include "utsushi/common/error.h"

namespace utsushi::livemig {

using Bytes = std::vector<std::uint8_t>;

inline void put_u8(Bytes& out, std::uint8_t v) { out.push_back(v); }
inline void put_be16(Bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
inline void put_be32(Bytes& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}
inline void put_be64(Bytes& out, std::uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}
inline void put_bytes(Bytes& out, std::span<const std::uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); }
inline void put_string(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }
// Unsigned LEB128 (at most 10 bytes for 64 bits).
inline void put_varint(Bytes& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(v));
}

// load_be16/32/64: common/endian.h.

// Reads from a span; every accessor fails with Errc::corruption naming `what`
// when fewer bytes remain than it needs. The span must outlive the cursor.
class Cursor {
 public:
  Cursor(std::span<const std::uint8_t> data, std::string_view what) : m_data(data), m_what(what) {}

  std::size_t remaining() const noexcept { return m_data.size() - m_pos; }
  std::size_t position() const noexcept { return m_pos; }
  bool done() const noexcept { return m_pos == m_data.size(); }

  [[nodiscard]] Result<std::span<const std::uint8_t>> take(std::size_t n) {
    if (n > remaining()) {
      return fail(Errc::corruption, std::string(m_what) + ": truncated (need " + std::to_string(n) +
                                        " bytes, " + std::to_string(remaining()) + " left)");
    }
    auto s = m_data.subspan(m_pos, n);
    m_pos += n;
    return s;
  }
  [[nodiscard]] Result<std::uint8_t> u8() {
    auto s = UTSUSHI_TRY(take(1));
    return s[0];
  }
  [[nodiscard]] Result<std::uint32_t> be32() {
    auto s = UTSUSHI_TRY(take(4));
    return load_be32(s.data());
  }
  [[nodiscard]] Result<std::uint64_t> be64() {
    auto s = UTSUSHI_TRY(take(8));
    return load_be64(s.data());
  }
  [[nodiscard]] Result<std::uint64_t> varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      auto b = UTSUSHI_TRY(u8());
      v |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) {
        return v;
      }
    }
    return fail(Errc::corruption, std::string(m_what) + ": varint longer than 10 bytes");
  }

 private:
  std::span<const std::uint8_t> m_data;
  std::size_t m_pos = 0;
  std::string_view m_what;
};

}  // namespace utsushi::livemig
