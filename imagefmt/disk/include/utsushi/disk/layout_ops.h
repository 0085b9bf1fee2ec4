#pragma once
// Operations on a decoded partition table, for restoring a disk onto one of
// another size: pure functions from a PartitionTable to a new one (nothing is
// read or written; encode_partition_table writes the result). Every result is
// checked with check_layout, and its `metadata` is recomputed.

#include <cstdint>

#include "utsushi/disk/partition_table.h"

namespace utsushi::disk {

// Checks that `t` is consistent and fits a disk of t.disk_size bytes:
// partitions sector-aligned, non-empty, not overlapping each other or the
// table's own sectors; MBR: 32-bit LBAs, primaries numbered 1-4 and apart
// from the extended partition, logicals (numbered from 5 in chain order)
// inside it with their EBR before them; GPT: the entry arrays between the
// headers and the usable range, partitions inside the usable range, numbers
// within the entry count. out_of_range (naming the size needed) when the
// layout does not fit the disk; invalid_argument for any other inconsistency.
[[nodiscard]] Result<void> check_layout(const PartitionTable& t);

// The smallest disk that holds `t`'s partitions where they are (for a GPT,
// with its backup structures moved to the end of that disk).
std::uint64_t minimum_disk_size(const PartitionTable& t);

// `t` on a disk of `new_size` bytes. GPT: the backup entry array and header
// move to the new end and the last usable LBA follows them (larger or smaller
// disk); the protective MBR is sized by the encoder. MBR: the partitions stay.
// out_of_range, naming minimum_disk_size(t), when a partition would not fit.
[[nodiscard]] Result<PartitionTable> resize_disk(const PartitionTable& t, std::uint64_t new_size);

// Partition `number` with `new_length` bytes (a positive multiple of the
// sector size), its start unchanged. An MBR extended partition that ended
// with the last logical partition (or that the partition would leave) ends
// with it again. not_found for an unknown number; out_of_range or
// invalid_argument from check_layout when the result does not fit.
[[nodiscard]] Result<PartitionTable> resize_partition(const PartitionTable& t, unsigned number,
                                                      std::uint64_t new_length);

// The bytes a move must copy: `length` bytes from `from` to `to`. When the
// ranges overlap and to > from, copy from the end backwards.
struct ByteMove {
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  std::uint64_t length = 0;
  bool overlaps() const noexcept { return from < to ? to - from < length : from - to < length; }
  friend bool operator==(const ByteMove&, const ByteMove&) = default;
};

struct MovedPartition {
  PartitionTable table;
  ByteMove data;  // the partition's contents
};

// Partition `number` starting at `new_offset` (sector-aligned), its length
// unchanged. A logical partition's EBR moves with it (except the first EBR,
// which stays at the start of the extended partition). Errors as
// resize_partition.
[[nodiscard]] Result<MovedPartition> move_partition(const PartitionTable& t, unsigned number,
                                                    std::uint64_t new_offset);

// The largest length partition `number` can have without moving: up to the
// next partition, EBR or table structure, or the end of the usable area.
[[nodiscard]] Result<std::uint64_t> max_partition_length(const PartitionTable& t, unsigned number);

}  // namespace utsushi::disk
