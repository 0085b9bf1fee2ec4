#pragma once
// The first sector of a disk as the BIOS boot path sees it (private to the
// guest library). MBR layout: boot code in bytes 0..439, signature 0x55 0xAA
// at 510..511 (UEFI spec 2.9, 5.2.1 "Legacy Master Boot Record").
#include <algorithm>
#include <cstdint>
#include <span>
#include <string_view>

namespace utsushi::guest::detail {

inline constexpr std::size_t k_mbr_code_bytes = 440;
inline constexpr std::size_t k_sector = 512;

// Whether the sector carries boot code (signed, code area not all zero).
inline bool mbr_has_boot_code(std::span<const std::uint8_t> sector) {
  if (sector.size() < k_sector || sector[510] != 0x55 || sector[511] != 0xAA) {
    return false;
  }
  auto code = sector.first(k_mbr_code_bytes);
  return std::any_of(code.begin(), code.end(), [](std::uint8_t b) { return b != 0; });
}

// Whether that boot code is GRUB's boot.img (it carries the string "GRUB").
inline bool mbr_is_grub(std::span<const std::uint8_t> sector) {
  if (!mbr_has_boot_code(sector)) {
    return false;
  }
  std::string_view code(reinterpret_cast<const char*>(sector.data()), k_mbr_code_bytes);
  return code.find("GRUB") != std::string_view::npos;
}

inline constexpr std::string_view k_esp_gpt_type = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
inline constexpr std::string_view k_esp_mbr_type = "0xef";

}  // namespace utsushi::guest::detail
