#pragma once
// Partition tables of a whole disk: MBR (primary, extended and logical
// partitions) and GPT (protective MBR, both headers and both entry arrays,
// CRC-checked), decoded into one model that can be encoded again.
//
// Reading (read_partition_table) goes through the pure decoders of
// mbr_format.h and gpt_format.h; every partition is checked against the disk.
// Writing (encode_partition_table, write_partition_table) produces exactly
// the sectors of the table, leaving boot code and data alone; the operations
// that change a layout (resize the disk, resize or move a partition) are in
// layout_ops.h.
//
// The metadata a capture always copies is listed in `metadata`: the MBR and
// the gap up to the first partition (boot loader code such as GRUB's
// core.img), every EBR sector, the primary GPT and the backup GPT.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/disk/byte_ranges.h"
#include "utsushi/imagefmt/block_device.h"

namespace utsushi::disk {

enum class TableKind { none, mbr, gpt };
// "dos", "gpt" or "none" (the names sfdisk uses).
std::string_view table_kind_name(TableKind k) noexcept;

struct Partition {
  unsigned number = 0;       // 1-based: MBR primaries 1-4 by slot, logicals from 5; GPT slot + 1
  std::uint64_t offset = 0;  // bytes, a multiple of the sector size
  std::uint64_t length = 0;  // bytes, a multiple of the sector size
  std::string type;          // MBR: "0x83"; GPT: lower-case type GUID
  std::string name;          // GPT partition name (UTF-8), else ""
  bool bootable = false;     // MBR active flag / GPT legacy BIOS bootable attribute
  std::string uuid;          // GPT unique partition GUID, else ""
  std::uint64_t attributes = 0;  // GPT attribute bits other than legacy BIOS bootable (that is `bootable`)
  std::uint64_t ebr_offset = 0;  // MBR logical partitions: their EBR sector (bytes); else 0
  std::uint64_t end() const noexcept { return offset + length; }
  friend bool operator==(const Partition&, const Partition&) = default;
};

// The extended partition of an MBR: a container of logical partitions, not
// a volume.
struct MbrExtended {
  unsigned slot = 0;         // 1-4
  std::uint8_t type = 0x05;  // 0x05, 0x0F or 0x85
  std::uint64_t offset = 0;  // bytes
  std::uint64_t length = 0;
  std::uint64_t end() const noexcept { return offset + length; }
  friend bool operator==(const MbrExtended&, const MbrExtended&) = default;
};

// Where a GPT keeps its structures, in sectors.
struct GptGeometry {
  std::uint64_t first_usable_lba = 0;
  std::uint64_t last_usable_lba = 0;
  std::uint64_t entries_lba = 2;           // the primary entry array
  std::uint64_t backup_lba = 0;            // the backup header (normally the last sector)
  std::uint64_t backup_entries_lba = 0;    // the backup entry array (normally just before it)
  std::uint32_t entry_count = 128;
  std::uint32_t entry_size = 128;
  friend bool operator==(const GptGeometry&, const GptGeometry&) = default;
};

struct PartitionTable {
  TableKind kind = TableKind::none;
  std::uint32_t sector_size = 512;
  std::uint64_t disk_size = 0;         // bytes of the disk the table describes
  std::string disk_id;                 // MBR "0x1234abcd" or GPT disk GUID
  std::vector<Partition> partitions;   // MBR: primaries by slot, then logicals in chain order; GPT: by slot
  std::optional<MbrExtended> extended; // MBR only
  GptGeometry gpt;                     // GPT only
  ByteRanges metadata;                 // always copied (see table_metadata)
  std::vector<std::string> warnings;   // e.g. "primary GPT header is corrupt; using the backup"
  bool has_boot_code = false;          // MBR bytes 0..439 not all zero
};

// Reads the partition table of `disk`. A disk with neither table gives
// kind == none (a whole-disk filesystem). Errors:
//  - corruption: the GPT is unusable (both headers or both entry arrays bad),
//    an MBR partition or EBR chain is inconsistent (loops, overlaps), or a
//    partition reaches past the end of the disk (a truncated image);
//  - io_error from the device.
[[nodiscard]] Result<PartitionTable> read_partition_table(imagefmt::BlockDevice& disk);

// The byte ranges a copy of the disk must keep for the table to work: MBR:
// [0, first partition) and every EBR sector; GPT: everything outside the
// usable LBAs (protective MBR, both headers and arrays).
ByteRanges table_metadata(const PartitionTable& t);

// One write of an encoded table: `bytes` at byte `offset` of the disk.
struct SectorWrite {
  std::uint64_t offset = 0;
  std::vector<std::uint8_t> bytes;
  friend bool operator==(const SectorWrite&, const SectorWrite&) = default;
};

// Encodes `t` for a disk of t.disk_size bytes, after check_layout(t):
//  - MBR: sector 0 from the disk signature on (boot code kept), and each
//    EBR's four records and signature;
//  - GPT: the protective MBR's records (boot code kept; a hybrid MBR becomes
//    protective), the primary header and array, the backup array and header.
// invalid_argument when the layout is inconsistent (see check_layout) or a
// field does not fit its on-disk form.
[[nodiscard]] Result<std::vector<SectorWrite>> encode_partition_table(const PartitionTable& t);

// Encodes `t` and writes it to `disk` (whose size must be t.disk_size), then
// flushes. Only the table's own sectors are written.
[[nodiscard]] Result<void> write_partition_table(imagefmt::BlockDevice& disk, const PartitionTable& t);

}  // namespace utsushi::disk
