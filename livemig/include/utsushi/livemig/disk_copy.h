#pragma once
// The two ends of a disk pass between NBD exports and disk messages
// (disk_message.h): the source reads the ranges a pass chose
// (disk_extents.h) into batches; the destination writes a decoded batch.
// Neither compresses nor hashes: the caller encodes each batch and adds it to
// its DiskWriteHash (disk_hash.h), as the receiver does with what it wrote.

#include <cstdint>
#include <functional>
#include <span>

#include "utsushi/common/error.h"
#include "utsushi/livemig/disk_message.h"
#include "utsushi/livemig/nbd_client.h"

namespace utsushi::livemig {

using BatchSink = std::function<Result<void>(DiskBatch&&)>;

struct BatchLimits {
  std::uint32_t max_data = 4u << 20;         // data bytes per batch (<= k_max_disk_data)
  std::uint32_t max_ranges = 4096;           // ranges per batch (<= k_max_disk_ranges)
};

// Reads the data ranges of `ranges` (in offset order, inside the export)
// from `source` and hands batches of disk `disk` to `sink`, in offset order,
// each within `limits`. A data range longer than a batch holds is cut at
// multiples of k_disk_hash_granule; a granule-aligned piece that reads as all
// zeros travels as a zero range. Stops at the first error (of the reads or of
// the sink) and returns it.
[[nodiscard]] Result<void> read_batches(NbdClient& source, std::uint32_t disk, std::span<const DiskRange> ranges,
                                        BatchLimits limits, const BatchSink& sink);

// Writes a batch to `dest`: data ranges with NBD WRITE, zero ranges with
// WRITE_ZEROES. REQUIRES: the batch came from decode_disk_batch with this
// disk's size (or passed encode_disk_batch's checks) and its copy ranges were
// resolved (block_index.h's resolve_copies); one left is Errc::internal.
[[nodiscard]] Result<void> write_batch(NbdClient& dest, const DiskBatch& batch);

}  // namespace utsushi::livemig
