#pragma once
// MBR on-disk layout: the IBM PC master boot record and the extended boot
// records (EBRs) of logical partitions, as described in the UEFI
// Specification 2.10, section 5.2.1 "Legacy Master Boot Record (MBR)"
// (table 5-1: boot code at 0 (440 bytes), unique disk signature at 440 (4),
// unknown at 444 (2), four 16-byte partition records at 446, signature 0xAA55
// at 510) and table 5-2 (a partition record: boot indicator, starting CHS,
// OS type, ending CHS, starting LBA, size in LBA). EBRs use the same sector
// layout: entry 1 is the logical partition (its LBA relative to the EBR),
// entry 2 links to the next EBR (its LBA relative to the extended partition).
// All integers are little-endian. These functions are pure.

#include <array>
#include <cstdint>
#include <span>

#include "utsushi/common/error.h"

namespace utsushi::disk::mbr {

inline constexpr std::size_t k_sector_size = 512;
inline constexpr std::size_t k_boot_code_size = 440;
inline constexpr std::size_t k_disk_signature_offset = 440;
inline constexpr std::size_t k_entries_offset = 446;
inline constexpr std::size_t k_entry_size = 16;
inline constexpr std::size_t k_entry_count = 4;
inline constexpr std::size_t k_signature_offset = 510;
inline constexpr std::uint8_t k_signature[2] = {0x55, 0xAA};
// The bytes an encoder writes into an MBR sector: from the disk signature (or
// from the entries, for an EBR) to the end of the sector.
inline constexpr std::size_t k_table_bytes = k_sector_size - k_entries_offset;
static_assert(k_entries_offset + k_entry_count * k_entry_size == k_signature_offset);

// Partition record fields (offsets inside a 16-byte record).
inline constexpr std::size_t e_status = 0, e_chs_first = 1, e_type = 4, e_chs_last = 5, e_lba_start = 8,
                             e_lba_count = 12;
inline constexpr std::uint8_t k_status_active = 0x80;
inline constexpr std::uint8_t k_type_empty = 0x00;
inline constexpr std::uint8_t k_type_extended_chs = 0x05;
inline constexpr std::uint8_t k_type_extended_lba = 0x0F;
inline constexpr std::uint8_t k_type_extended_linux = 0x85;
inline constexpr std::uint8_t k_type_gpt_protective = 0xEE;  // UEFI 2.10 table 5-4
// CHS geometry used for the legacy CHS fields (as fdisk and sfdisk write them):
// 255 heads, 63 sectors per track; addresses past cylinder 1023 saturate.
inline constexpr std::uint32_t k_chs_heads = 255, k_chs_sectors = 63, k_chs_max_cylinder = 1023;
inline constexpr std::uint64_t k_max_lba = 0xFFFFFFFFull;  // 32-bit LBA fields

struct Entry {
  std::uint8_t status = 0;  // 0x80 active (bootable), 0 otherwise
  std::uint8_t type = 0;    // OS type; 0 = unused
  std::uint32_t lba_start = 0;
  std::uint32_t lba_count = 0;
  bool empty() const noexcept { return type == k_type_empty || lba_count == 0; }
  friend bool operator==(const Entry&, const Entry&) = default;
};
using Entries = std::array<Entry, k_entry_count>;

bool is_extended_type(std::uint8_t type) noexcept;

// The four records of an MBR or EBR sector (at least 512 bytes). corruption
// without the 0x55AA signature or with a status byte other than 0 or 0x80.
[[nodiscard]] Result<Entries> decode_entries(std::span<const std::uint8_t> sector);

// Writes the four records and the signature into sector[446, 512). The boot
// code and disk signature are left as they are. The CHS fields are derived
// from the absolute LBAs chs_base[i] + lba_start (an EBR's records hold
// relative LBAs but absolute CHS). `sector` holds at least 512 bytes.
void encode_entries(const Entries& entries, std::span<std::uint8_t> sector,
                    const std::array<std::uint64_t, k_entry_count>& chs_base = {}) noexcept;

// The 3-byte CHS encoding of `lba` (head, sector | cylinder bits 8-9 << 6,
// cylinder bits 0-7).
std::array<std::uint8_t, 3> chs_of(std::uint64_t lba) noexcept;

}  // namespace utsushi::disk::mbr
