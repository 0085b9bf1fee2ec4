#pragma once
// Internal: the checksums of filesystem metadata that zlib does not offer.
// zlib's crc32() is the ISO-HDLC CRC-32 (GPT, LVM use it directly); ext4 and
// XFS use the Castagnoli polynomial and ext4's older gdt_csum a CRC-16, which
// no library Debian ships provides apart from e2fsprogs' own internals.

#include <cstdint>
#include <span>

namespace utsushi::disk {

// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, with no initial or
// final inversion (Linux's crc32c(seed, p, len); ext4's and XFS's building block).
std::uint32_t crc32c_update(std::uint32_t crc, std::span<const std::uint8_t> data) noexcept;
// The standard CRC-32C: init ~0, final inversion (XFS stores this, iSCSI's check value).
inline std::uint32_t crc32c(std::span<const std::uint8_t> data) noexcept { return ~crc32c_update(~0u, data); }
// CRC-16 (ANSI, reflected polynomial 0xA001), no inversion (Linux lib/crc16.c; ext4 gdt_csum).
std::uint16_t crc16_update(std::uint16_t crc, std::span<const std::uint8_t> data) noexcept;

}  // namespace utsushi::disk
