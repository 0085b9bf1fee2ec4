// CRC-32C and CRC-16 by table (see checksums.h for why not a library).
#include <array>

#include "checksums.h"

namespace utsushi::disk {
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

}  // namespace utsushi::disk
