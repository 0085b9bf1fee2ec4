#pragma once
// The disk data message of livemig's disk pre-copy (docs/ARCHITECTURE.md,
// "livemig: disks"): one batch of ranges of one disk, the payload of one
// link frame (FrameType::disk_data, frame.h). Pure encode/decode functions;
// the NBD side is nbd_client.h, the ranges come from disk_extents.h.
//
// Payload layout (big-endian):
//   offset size  field
//   0      4     disk id: index of the disk in the session's disk list
//   4      4     range count N (1 .. k_max_disk_ranges)
//   8      4     data length: the sum of the data ranges' lengths and of 16
//                bytes per block of the copy ranges (<= k_max_disk_data)
//   12     1     codec: 0 = the data bytes as they are, 1 = one zstd frame of them
//   13     3     reserved, 0
//   16     N*24  range table, each entry:
//                  0  8  offset on the disk
//                  8  8  length (> 0)
//                  16 1  kind: 1 = data (its bytes follow in the data, in table
//                        order), 2 = zero (the range reads as zeros), 3 = copy
//                        (protocol 7: blocks the receiver holds, block_index.h;
//                        offset a multiple of k_disk_copy_align (protocol 10;
//                        before, of the block), length a multiple of
//                        k_disk_copy_block, and for each block its XXH3-128,
//                        16 bytes, high half first, follows in the data, in
//                        table order)
//                  17 7  reserved, 0
//   16+N*24 ...  the data (codec 0: exactly `data length` bytes; codec 1: a
//                zstd frame that decodes to exactly that many)
//
// The ranges' written bytes (data and copy lengths) are at most
// k_max_disk_data, so a message never expands beyond it.
//
// Decoding checks every field before anything is written: a range past the
// disk's size, an offset + length that overflows, a data length that does not
// match the table, a truncated or trailing payload, an unknown kind or codec,
// or non-zero reserved bytes are Errc::corruption (the migration ends and the
// source keeps running).

#include <zstd.h>

#include <cstdint>
#include <span>
#include <vector>

#include "utsushi/common/endian.h"
#include "utsushi/common/error.h"

namespace utsushi::livemig {

enum class DiskRangeKind : std::uint8_t {
  data = 1,  // the bytes travel in the message
  zero = 2,  // the range reads as zeros; no bytes travel
  copy = 3,  // each block's content hash travels; the receiver holds the content
};

// A copy range's unit, where on the disk it may start (a sector: content
// copied into an archive, e.g. a tar's members, sits at any 512-byte offset),
// and the bytes that name one block's content.
inline constexpr std::uint64_t k_disk_copy_block = 4096;
inline constexpr std::uint64_t k_disk_copy_align = 512;
inline constexpr std::size_t k_disk_copy_hash = 16;

struct DiskRange {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  DiskRangeKind kind = DiskRangeKind::data;

  friend bool operator==(const DiskRange&, const DiskRange&) = default;
};

// One message, decoded: `data` holds, in table order, each data range's bytes
// and each copy range's block hashes (k_disk_copy_hash per block).
struct DiskBatch {
  std::uint32_t disk = 0;
  std::vector<DiskRange> ranges;
  Bytes data;
};

inline constexpr std::size_t k_disk_message_header = 16;
inline constexpr std::size_t k_disk_range_entry = 24;
inline constexpr std::uint32_t k_max_disk_ranges = 65536;
// At most this many data bytes in one message (the link's frames carry at
// most 64 MiB; a batch leaves room for its table and zstd's worst case).
inline constexpr std::uint32_t k_max_disk_data = 32u << 20;

enum class DiskCodec : std::uint8_t { raw = 0, zstd = 1 };

// Offsets of the header's fields and of a range entry's fields.
namespace disk_offset {
inline constexpr std::size_t disk = 0, count = 4, data_len = 8, codec = 12, reserved = 13;
inline constexpr std::size_t range_offset = 0, range_length = 8, range_kind = 16, range_reserved = 17;
}  // namespace disk_offset
static_assert(disk_offset::reserved + 3 == k_disk_message_header);
static_assert(disk_offset::range_reserved + 7 == k_disk_range_entry);

// Appends the message for `batch` to `out`. The data is compressed through
// `cctx` (its level is the caller's) and sent raw when that does not make it
// smaller; `cctx` may be null (always raw). Errc::invalid_argument when the
// batch breaks the limits above (no ranges, too many, an empty range, an
// overflowing range, a copy range not of whole blocks or not on
// k_disk_copy_align, data that does not match the ranges, more than
// k_max_disk_data written bytes).
[[nodiscard]] Result<void> encode_disk_batch(const DiskBatch& batch, ZSTD_CCtx* cctx, Bytes& out);

// Decodes and checks one message. `disk_sizes[id]` is the virtual size of
// disk `id`; a message naming a disk outside the list is corruption.
[[nodiscard]] Result<DiskBatch> decode_disk_batch(std::span<const std::uint8_t> payload,
                                                  std::span<const std::uint64_t> disk_sizes, ZSTD_DCtx* dctx);

// Whether [offset, offset + length) is a non-empty range inside a disk of
// `size` bytes, without overflow.
[[nodiscard]] constexpr bool range_inside(std::uint64_t offset, std::uint64_t length, std::uint64_t size) noexcept {
  return length > 0 && offset <= size && length <= size - offset;
}

}  // namespace utsushi::livemig
