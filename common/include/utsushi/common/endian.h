#pragma once
// Fixed-width integers in on-disk and on-wire byte orders. Every format
// decoder and encoder uses these; callers check that the bytes lie inside
// their buffer first (decoders check a structure's size once, then read fixed
// offsets). Unaligned access is fine: the compiler turns memcpy + byteswap
// into a single load or store.

#include <bit>
#include <cstdint>
#include <cstring>

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

}  // namespace utsushi
