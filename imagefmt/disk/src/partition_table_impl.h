#pragma once
// Internal: the per-table readers behind read_partition_table().
#include <span>

#include "utsushi/disk/partition_table.h"

namespace utsushi::disk {

// Appends the MBR's partitions to `t` (kind becomes mbr, extended is set).
[[nodiscard]] Result<void> read_mbr(imagefmt::BlockDevice& disk, std::span<const std::uint8_t> sector0,
                                    PartitionTable& t);
// Reads the GPT (primary and backup); `t.sector_size` is set by the caller.
// Returns not_found when no GPT header is present at all.
[[nodiscard]] Result<void> read_gpt(imagefmt::BlockDevice& disk, PartitionTable& t);

}  // namespace utsushi::disk
