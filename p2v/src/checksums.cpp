// Small checksum functions used by the on-disk decoders (the zlib CRC-32 is
// used directly where a format needs it).
#include <array>

#include "utsushi/p2v/endian.h"

namespace utsushi::p2v {
namespace {

template <class T, T Poly>
constexpr std::array<T, 256> make_table() {
  std::array<T, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    T c = static_cast<T>(i);
    for (int k = 0; k < 8; ++k) {
      c = (c & 1) ? static_cast<T>((c >> 1) ^ Poly) : static_cast<T>(c >> 1);
    }
    t[i] = c;
  }
  return t;
}

constexpr auto k_crc32c_table = make_table<std::uint32_t, 0x82F63B78u>();
constexpr auto k_crc16_table = make_table<std::uint16_t, 0xA001u>();

}  // namespace

std::uint32_t crc32c_update(std::uint32_t crc, std::span<const std::uint8_t> data) noexcept {
  for (std::uint8_t b : data) {
    crc = k_crc32c_table[(crc ^ b) & 0xFF] ^ (crc >> 8);
  }
  return crc;
}

std::uint16_t crc16_update(std::uint16_t crc, std::span<const std::uint8_t> data) noexcept {
  for (std::uint8_t b : data) {
    crc = static_cast<std::uint16_t>(k_crc16_table[(crc ^ b) & 0xFF] ^ (crc >> 8));
  }
  return crc;
}

std::string uuid_text(std::span<const std::uint8_t> b, std::size_t off) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      s.push_back('-');
    }
    s.push_back(k_hex[b[off + i] >> 4]);
    s.push_back(k_hex[b[off + i] & 0xF]);
  }
  return s;
}

}  // namespace utsushi::p2v
