#pragma once
// Partition tables of a whole disk: MBR (primary, extended and logical
// partitions, the protective MBR of GPT disks) and GPT (both headers and
// their entry arrays, CRC-checked). Decoding is pure over bytes read through
// the BlockDevice; every partition is checked against the disk size.
//
// The metadata a capture always copies is listed in `metadata`: the MBR and
// the gap up to the first partition (boot loader code such as GRUB's
// core.img), every EBR sector, the primary GPT and the backup GPT.

#include <cstdint>
#include <string>
#include <vector>

#include "utsushi/imagefmt/block_device.h"
#include "utsushi/p2v/byte_ranges.h"

namespace utsushi::p2v {

enum class TableKind { none, mbr, gpt };
std::string_view table_kind_name(TableKind k) noexcept;

struct Partition {
  unsigned number = 0;       // 1-based; MBR logical partitions start at 5
  std::uint64_t offset = 0;  // bytes
  std::uint64_t length = 0;  // bytes
  std::string type;          // MBR: "0x83"; GPT: lower-case type GUID
  std::string name;          // GPT partition name (ASCII subset), else ""
  bool bootable = false;     // MBR active flag / GPT legacy BIOS bootable
};

struct PartitionTable {
  TableKind kind = TableKind::none;
  std::uint32_t sector_size = 512;
  std::string disk_id;                 // MBR "0x1234abcd" or GPT disk GUID
  std::vector<Partition> partitions;   // in table order
  ByteRanges metadata;                 // always copied
  std::vector<std::string> warnings;   // e.g. "primary GPT header is corrupt; using the backup"
  bool has_boot_code = false;          // MBR bytes 0..439 not all zero
};

// Reads the partition table of `disk`. A disk with neither table gives
// kind == none (a whole-disk filesystem). Errors:
//  - corruption: the GPT is unusable (both headers or both entry arrays bad),
//    an MBR partition or EBR chain is inconsistent (loops, overlaps), or a
//    partition reaches past the end of the disk (a truncated image);
//  - io_error from the device.
Result<PartitionTable> read_partition_table(imagefmt::BlockDevice& disk);

// Pure decoders (exposed for tests).
struct MbrEntry {
  std::uint8_t status = 0;
  std::uint8_t type = 0;
  std::uint32_t lba_start = 0;
  std::uint32_t lba_count = 0;
};
// The four entries of an MBR or EBR sector (512 bytes); corruption without 0x55AA.
Result<std::vector<MbrEntry>> decode_mbr_entries(std::span<const std::uint8_t> sector);
bool is_extended_type(std::uint8_t type) noexcept;

}  // namespace utsushi::p2v
