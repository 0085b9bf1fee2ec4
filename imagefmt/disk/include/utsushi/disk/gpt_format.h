#pragma once
// GPT on-disk layout: UEFI Specification 2.10, chapter 5 "GUID Partition
// Table (GPT) Disk Layout":
//  - 5.2.3 the protective MBR (one record of type 0xEE from LBA 1 over the
//    whole disk, or 0xFFFFFFFF sectors when larger);
//  - 5.3.2 table 5-5, the GPT header at LBA 1 and its backup at the last LBA
//    (signature "EFI PART", revision 1.0, header size 92, CRC32 of the header
//    with the CRC field zeroed, both LBAs, the usable range, disk GUID, entry
//    array LBA, count, entry size and the array's CRC32);
//  - 5.3.3 table 5-6, a partition entry (type GUID, unique GUID, first and
//    last LBA inclusive, attributes, a 36-character UTF-16LE name), and
//    table 5-7, the attribute bits.
// CRC32 is zlib's crc32 (the ISO 3309 CRC the spec names). GUIDs are stored
// mixed-endian (guid.h). All integers are little-endian. These functions are
// pure; every LBA and size they decode is checked before use.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/disk/guid.h"

namespace utsushi::disk::gpt {

inline constexpr std::string_view k_signature = "EFI PART";
inline constexpr std::uint32_t k_revision = 0x00010000;
inline constexpr std::uint32_t k_header_size = 92;
// Header field offsets (table 5-5).
inline constexpr std::size_t h_signature = 0, h_revision = 8, h_header_size = 12, h_header_crc = 16, h_reserved = 20,
                             h_my_lba = 24, h_alternate_lba = 32, h_first_usable = 40, h_last_usable = 48,
                             h_disk_guid = 56, h_entries_lba = 72, h_entry_count = 80, h_entry_size = 84,
                             h_entries_crc = 88;
static_assert(h_entries_crc + 4 == k_header_size);
// Entry field offsets (table 5-6).
inline constexpr std::size_t e_type = 0, e_unique = 16, e_first_lba = 32, e_last_lba = 40, e_attributes = 48,
                             e_name = 56;
inline constexpr std::size_t k_name_units = 36;  // UTF-16 code units
inline constexpr std::uint32_t k_min_entry_size = 128;
static_assert(e_name + 2 * k_name_units == k_min_entry_size);
inline constexpr std::uint32_t k_default_entry_count = 128;
// The spec asks for at least 16384 bytes of entries; we refuse arrays beyond
// this bound as corrupt rather than allocate them.
inline constexpr std::uint64_t k_min_entries_bytes = 16384;
inline constexpr std::uint64_t k_max_entries_bytes = 4u << 20;
// Attribute bits (table 5-7).
inline constexpr std::uint64_t k_attr_required = 1ull << 0;
inline constexpr std::uint64_t k_attr_no_block_io = 1ull << 1;
inline constexpr std::uint64_t k_attr_legacy_bios_bootable = 1ull << 2;

struct Header {
  std::uint64_t my_lba = 0;
  std::uint64_t alternate_lba = 0;
  std::uint64_t first_usable_lba = 0;
  std::uint64_t last_usable_lba = 0;
  Guid disk_guid;
  std::uint64_t entries_lba = 0;
  std::uint32_t entry_count = 0;
  std::uint32_t entry_size = 0;
  std::uint32_t entries_crc = 0;
  friend bool operator==(const Header&, const Header&) = default;
};

struct Entry {
  Guid type;  // nil: the slot is unused
  Guid unique;
  std::uint64_t first_lba = 0;
  std::uint64_t last_lba = 0;  // inclusive
  std::uint64_t attributes = 0;
  std::string name;  // UTF-8
  bool used() const noexcept { return !type.is_nil(); }
  friend bool operator==(const Entry&, const Entry&) = default;
};

// Bytes of an entry array, and the sectors it occupies (both overflow-free
// for any count and size that decode_header accepts).
std::uint64_t entries_bytes(std::uint32_t count, std::uint32_t size) noexcept;
std::uint64_t entries_sectors(std::uint32_t count, std::uint32_t size, std::uint32_t sector_size) noexcept;

// Decodes the header in `sector` (one sector). not_found without the
// signature; corruption for a bad size, CRC, or entry geometry (entry size a
// power of two >= 128, array at most k_max_entries_bytes).
[[nodiscard]] Result<Header> decode_header(std::span<const std::uint8_t> sector);
// One sector: the header, its CRC computed, the rest zero.
std::vector<std::uint8_t> encode_header(const Header& h, std::uint32_t sector_size);

// zlib's CRC32 of `bytes`.
std::uint32_t crc32_of(std::span<const std::uint8_t> bytes) noexcept;

// Decodes `count` entries of `size` bytes each; corruption when `bytes` is
// too short or a used entry has first_lba > last_lba. Names decode from
// UTF-16LE (up to the first NUL; unpaired surrogates become U+FFFD).
[[nodiscard]] Result<std::vector<Entry>> decode_entries(std::span<const std::uint8_t> bytes, std::uint32_t count,
                                                        std::uint32_t size);
// The array: `entries` in slots 0.., the remaining slots zero, padded with
// zeros to whole sectors. invalid_argument when there are more entries than
// `count` or a name does not fit 36 UTF-16 code units (or is not UTF-8).
[[nodiscard]] Result<std::vector<std::uint8_t>> encode_entries(std::span<const Entry> entries, std::uint32_t count,
                                                               std::uint32_t size, std::uint32_t sector_size);

// UTF-16LE name field <-> UTF-8.
std::string decode_name(std::span<const std::uint8_t> field);
[[nodiscard]] Result<std::vector<std::uint8_t>> encode_name(std::string_view utf8);

}  // namespace utsushi::disk::gpt
