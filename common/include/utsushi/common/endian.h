#pragma once
// The one byte-order and byte-cursor layer of utsushi: every on-disk and
// on-wire decoder and encoder uses it.
//
//  - load_/store_{le,be}{16,32,64}: fixed-width integers at a pointer. The
//    caller has checked that the bytes lie inside its buffer (decoders check a
//    structure's size once, then read fixed offsets). Unaligned access is
//    fine: the compiler turns memcpy + byteswap into a single load or store.
//  - {le,be}{16,32,64}_at(span, offset) and has_bytes_at: the same over a span,
//    for offset tables; the field must lie inside the span.
//  - Bytes and put_*: appending encoders (big- and little-endian integers,
//    unsigned LEB128 varints, raw bytes).
//  - Cursor: a bounds-checked reader whose every read returns a Result and
//    fails with Errc::corruption, naming what is decoded, instead of reading
//    past the end.

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi {

namespace endian_detail {
template <class T>
inline T load_native(const std::uint8_t* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
inline void store_native(std::uint8_t* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}
template <class T>
inline T to_le(T v) noexcept {
  return std::endian::native == std::endian::little ? v : std::byteswap(v);
}
template <class T>
inline T to_be(T v) noexcept {
  return std::endian::native == std::endian::big ? v : std::byteswap(v);
}
}  // namespace endian_detail

inline std::uint16_t load_le16(const std::uint8_t* p) noexcept {
  return endian_detail::to_le(endian_detail::load_native<std::uint16_t>(p));
}
inline std::uint32_t load_le32(const std::uint8_t* p) noexcept {
  return endian_detail::to_le(endian_detail::load_native<std::uint32_t>(p));
}
inline std::uint64_t load_le64(const std::uint8_t* p) noexcept {
  return endian_detail::to_le(endian_detail::load_native<std::uint64_t>(p));
}
inline std::uint16_t load_be16(const std::uint8_t* p) noexcept {
  return endian_detail::to_be(endian_detail::load_native<std::uint16_t>(p));
}
inline std::uint32_t load_be32(const std::uint8_t* p) noexcept {
  return endian_detail::to_be(endian_detail::load_native<std::uint32_t>(p));
}
inline std::uint64_t load_be64(const std::uint8_t* p) noexcept {
  return endian_detail::to_be(endian_detail::load_native<std::uint64_t>(p));
}

inline void store_le16(std::uint8_t* p, std::uint16_t v) noexcept { endian_detail::store_native(p, endian_detail::to_le(v)); }
inline void store_le32(std::uint8_t* p, std::uint32_t v) noexcept { endian_detail::store_native(p, endian_detail::to_le(v)); }
inline void store_le64(std::uint8_t* p, std::uint64_t v) noexcept { endian_detail::store_native(p, endian_detail::to_le(v)); }
inline void store_be16(std::uint8_t* p, std::uint16_t v) noexcept { endian_detail::store_native(p, endian_detail::to_be(v)); }
inline void store_be32(std::uint8_t* p, std::uint32_t v) noexcept { endian_detail::store_native(p, endian_detail::to_be(v)); }
inline void store_be64(std::uint8_t* p, std::uint64_t v) noexcept { endian_detail::store_native(p, endian_detail::to_be(v)); }

// Fields in a span (the caller checked that offset + width <= b.size()).
inline std::uint16_t le16_at(std::span<const std::uint8_t> b, std::size_t off) noexcept { return load_le16(b.data() + off); }
inline std::uint32_t le32_at(std::span<const std::uint8_t> b, std::size_t off) noexcept { return load_le32(b.data() + off); }
inline std::uint64_t le64_at(std::span<const std::uint8_t> b, std::size_t off) noexcept { return load_le64(b.data() + off); }
inline std::uint16_t be16_at(std::span<const std::uint8_t> b, std::size_t off) noexcept { return load_be16(b.data() + off); }
inline std::uint32_t be32_at(std::span<const std::uint8_t> b, std::size_t off) noexcept { return load_be32(b.data() + off); }
inline std::uint64_t be64_at(std::span<const std::uint8_t> b, std::size_t off) noexcept { return load_be64(b.data() + off); }
// True when `b` holds the bytes of `text` at `off` (false when too short).
inline bool has_bytes_at(std::span<const std::uint8_t> b, std::size_t off, std::string_view text) noexcept {
  return off <= b.size() && text.size() <= b.size() - off && std::memcmp(b.data() + off, text.data(), text.size()) == 0;
}

using Bytes = std::vector<std::uint8_t>;

inline void put_u8(Bytes& out, std::uint8_t v) { out.push_back(v); }
inline void put_be16(Bytes& out, std::uint16_t v) {
  out.resize(out.size() + 2);
  store_be16(out.data() + out.size() - 2, v);
}
inline void put_be32(Bytes& out, std::uint32_t v) {
  out.resize(out.size() + 4);
  store_be32(out.data() + out.size() - 4, v);
}
inline void put_be64(Bytes& out, std::uint64_t v) {
  out.resize(out.size() + 8);
  store_be64(out.data() + out.size() - 8, v);
}
inline void put_le32(Bytes& out, std::uint32_t v) {
  out.resize(out.size() + 4);
  store_le32(out.data() + out.size() - 4, v);
}
inline void put_le64(Bytes& out, std::uint64_t v) {
  out.resize(out.size() + 8);
  store_le64(out.data() + out.size() - 8, v);
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

// `text` as bytes (views the same memory).
inline std::span<const std::uint8_t> as_bytes(std::string_view text) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}
// `bytes` as text (views the same memory).
inline std::string_view as_text(std::span<const std::uint8_t> bytes) noexcept {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Reads from a span; every accessor fails with Errc::corruption naming `what`
// when fewer bytes remain than it needs, and then leaves the position as it
// was. The span and the text `what` views must outlive the cursor.
class Cursor {
 public:
  Cursor(std::span<const std::uint8_t> data, std::string_view what) noexcept : m_data(data), m_what(what) {}

  std::size_t remaining() const noexcept { return m_data.size() - m_pos; }
  std::size_t position() const noexcept { return m_pos; }
  bool done() const noexcept { return m_pos == m_data.size(); }

  [[nodiscard]] Result<std::span<const std::uint8_t>> take(std::size_t n) {
    if (n > remaining()) {
      return fail(Errc::corruption, std::string(m_what) + ": truncated (need " + std::to_string(n) + " bytes, " +
                                        std::to_string(remaining()) + " left)");
    }
    auto s = m_data.subspan(m_pos, n);
    m_pos += n;
    return s;
  }
  [[nodiscard]] Result<void> skip(std::size_t n) {
    UTSUSHI_TRY(take(n));
    return {};
  }
  [[nodiscard]] Result<std::uint8_t> u8() {
    auto s = UTSUSHI_TRY(take(1));
    return s[0];
  }
  [[nodiscard]] Result<std::uint16_t> be16() { return read<std::uint16_t>(load_be16); }
  [[nodiscard]] Result<std::uint32_t> be32() { return read<std::uint32_t>(load_be32); }
  [[nodiscard]] Result<std::uint64_t> be64() { return read<std::uint64_t>(load_be64); }
  [[nodiscard]] Result<std::uint16_t> le16() { return read<std::uint16_t>(load_le16); }
  [[nodiscard]] Result<std::uint32_t> le32() { return read<std::uint32_t>(load_le32); }
  [[nodiscard]] Result<std::uint64_t> le64() { return read<std::uint64_t>(load_le64); }
  [[nodiscard]] Result<std::uint64_t> varint() {
    std::size_t start = m_pos;
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      auto b = u8();
      if (!b) {
        m_pos = start;
        return std::unexpected(std::move(b).error());
      }
      v |= std::uint64_t{*b & 0x7fu} << shift;
      if ((*b & 0x80) == 0) {
        return v;
      }
    }
    m_pos = start;
    return fail(Errc::corruption, std::string(m_what) + ": varint longer than 10 bytes");
  }

 private:
  template <class T>
  [[nodiscard]] Result<T> read(T (*load)(const std::uint8_t*) noexcept) {
    auto s = UTSUSHI_TRY(take(sizeof(T)));
    return load(s.data());
  }

  std::span<const std::uint8_t> m_data;
  std::size_t m_pos = 0;
  std::string_view m_what;
};

}  // namespace utsushi
