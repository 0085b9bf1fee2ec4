#pragma once
// Disk blocks that memory pages (protocol 6) and disk batches' copy ranges
// (protocol 7) may refer to ( docs/ARCHITECTURE.md,
// "livemig: disks"). A guest's page cache holds copies of blocks its disk
// passes already carried; the page codec's `disk` kind (page_codec.h) sends
// such a page as the XXH3-128 of its content, and the receiver reads the
// content back from what it holds.
//
// The counted blocks of a disk_data batch (disk_message.h): every 4 KiB block
// aligned on its disk (offset a multiple of k_ref_block) that lies wholly
// inside one data range and is not all zeros. Of a session, only the first
// k_max_indexed_blocks distinct contents count. Both ends apply this rule to
// the same batches in the same (link) order, so they agree on the set:
//   - SentBlocks (sender): a batch's hashes are published only once its frame
//     was handed to the link, so a memory frame that refers to one of them
//     follows that frame on the link;
//   - ReceivedBlocks (receiver): hash -> where the content is. Each new
//     content is also kept in a local scratch space while it has room, so a
//     reference is resolved without reading through the destination QEMU's
//     export (slow while that QEMU loads the migration stream). A block left
//     only on its disk that is about to be overwritten (by data or zeros) is
//     first copied to the scratch space, so a reference always resolves to the
//     content it names, whatever was written since.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <utility>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/common/fd.h"
#include "utsushi/livemig/scratch_store.h"
#include "utsushi/livemig/disk_message.h"

namespace utsushi::livemig {

inline constexpr std::size_t k_ref_block = k_disk_copy_block;
// 4 GiB of distinct content; each end keeps ~100 bytes per entry at most.
inline constexpr std::size_t k_max_indexed_blocks = std::size_t{1} << 20;

struct BlockHash {
  std::uint64_t low = 0;
  std::uint64_t high = 0;
  friend bool operator==(const BlockHash&, const BlockHash&) = default;
};
struct BlockHashHasher {
  std::size_t operator()(const BlockHash& h) const noexcept { return static_cast<std::size_t>(h.low); }
};

// XXH3-128 of one k_ref_block block.
[[nodiscard]] BlockHash block_hash(const std::uint8_t* block) noexcept;

// A block's anchor: XXH3-64 of its first k_anchor_bytes. with_copies tests a
// window at a sector by its anchor (~15 ns) before it hashes the whole
// window (~0.4 us); zero_anchor(), the anchor of blocks that start with
// zeros, is never looked for (zero-filled stretches would pass every test).
inline constexpr std::size_t k_anchor_bytes = 64;
[[nodiscard]] std::uint64_t block_anchor(const std::uint8_t* block) noexcept;
[[nodiscard]] std::uint64_t zero_anchor() noexcept;

// A counted block (below) as the sender publishes it: its hash and anchor.
struct CountedBlock {
  BlockHash hash;
  std::uint64_t anchor = 0;
  friend bool operator==(const CountedBlock&, const CountedBlock&) = default;
};
[[nodiscard]] CountedBlock counted_block(const std::uint8_t* block) noexcept;

// Calls `fn(offset, block)` for each block of k_ref_block bytes aligned on its
// disk that lies wholly inside `data` (the bytes at [offset, offset +
// data.size()) of a disk) and is not all zeros, in order.
void for_each_counted_block(std::uint64_t offset, std::span<const std::uint8_t> data,
                            const std::function<void(std::uint64_t, const std::uint8_t*)>& fn);
// Calls `fn(offset, block)` for each counted block of `batch`, in table order.
// REQUIRES: a batch whose data holds exactly its data ranges' bytes.
void for_each_counted_block(const DiskBatch& batch,
                            const std::function<void(std::uint64_t, const std::uint8_t*)>& fn);
// The counted blocks of `batch`, in order.
[[nodiscard]] std::vector<CountedBlock> counted_blocks(const DiskBatch& batch);

class BackingBlocks;

// The wire form of `batch` (disk_message.h, protocol 10): every k_ref_block
// window of a data range whose content `held` says the receiver holds becomes
// (part of) a copy range. Windows are tried at each k_disk_copy_align offset
// on the disk, from the range's start: at a block boundary the counted block
// there, else the bytes there (content copied into an archive or a bigger
// file sits at any sector) when `may_start` (empty: always) passes their
// anchor; a window that matches is taken and the search goes on after it.
// Adjacent ranges of one kind are merged. `batch` itself when the result
// would need more than k_max_disk_ranges ranges. `counted`, when given,
// receives counted_blocks(batch) (hashed once for both).
// REQUIRES: a batch of data and zero ranges whose data holds exactly the data
// ranges' bytes (what read_batches makes).
using HeldTest = std::function<bool(const BlockHash&)>;
using AnchorTest = std::function<bool(std::uint64_t)>;
[[nodiscard]] DiskBatch with_copies(const DiskBatch& batch, const HeldTest& held, const AnchorTest& may_start = {},
                                    std::vector<CountedBlock>* counted = nullptr);
// The bytes of `wire`'s copy ranges (what travels as hashes).
[[nodiscard]] std::uint64_t copy_bytes(const DiskBatch& wire) noexcept;

// The sender's set: the blocks the link carried, and (once they are indexed)
// those of the disks' backing files (backing_blocks.h). Thread-safe: the disk
// shipper and the backing indexer publish while the pump looks up. Most
// lookups miss, so one bit per hash's low bits, and one per anchor, answer
// most of them before the set and the backings' sorted indexes are searched.
class SentBlocks {
 public:
  explicit SentBlocks(std::size_t cap = k_max_indexed_blocks)
      : m_cap(cap), m_hash_bits(k_filter_bits / 64), m_anchor_bits(k_filter_bits / 64) {}
  // Adds each block not yet in the set while it holds fewer than `cap`.
  void publish(std::span<const CountedBlock> blocks);
  // From now on, `backing`'s blocks are in the set too.
  void add_backing(std::shared_ptr<const BackingBlocks> backing);
  bool contains(const BlockHash& h) const;
  // False when no block of the set starts as a block with anchor `a` does
  // (true may be wrong); always false for zero_anchor().
  bool may_start(std::uint64_t a) const;
  // The blocks the link carried (the backings' not counted).
  std::size_t size() const;

 private:
  // 2 MiB each: ~1% false hits for the ~170k blocks of a 700 MB golden image.
  static constexpr std::size_t k_filter_bits = std::size_t{1} << 24;
  static void mark(std::vector<std::uint64_t>& bits, std::uint64_t key) noexcept;
  static bool marked(const std::vector<std::uint64_t>& bits, std::uint64_t key) noexcept;

  mutable std::mutex m_mutex;
  std::unordered_set<BlockHash, BlockHashHasher> m_set;
  std::vector<std::shared_ptr<const BackingBlocks>> m_backings;
  std::size_t m_cap;
  // Bit key % k_filter_bits: of every hash's low half, and of every anchor
  // known, in the set and the backings.
  std::vector<std::uint64_t> m_hash_bits;
  std::vector<std::uint64_t> m_anchor_bits;
};

// One referenced block to fetch: the content named by `hash`, into the
// k_ref_block bytes at `out`.
struct BlockFetch {
  BlockHash hash;
  std::uint8_t* out = nullptr;
};

// Where the page decoder gets referenced blocks (the receiver's DiskSink).
class BlockSource {
 public:
  virtual ~BlockSource() = default;
  // Fills every fetch's `out` (a batch at a time, so that blocks near each
  // other on disk are read together); Errc::corruption when one names a
  // content that is not known (a reference the sender had no right to make).
  [[nodiscard]] virtual Result<void> read_blocks(std::span<const BlockFetch> fetches) = 0;
};

// `wire` with each copy range replaced by a data range of the contents its
// hashes name, read through `source` in one call; adjacent data ranges are
// merged. REQUIRES: a batch decode_disk_batch returned (its data matches its
// ranges). The result has no copy range: it is what DiskWriteHash, the block
// index and write_batch take. The source's error (Errc::corruption for a content it does not
// hold) when one cannot be read.
[[nodiscard]] Result<DiskBatch> resolve_copies(const DiskBatch& wire, BlockSource& source);

// Reads of blocks near each other are merged: a read spans gaps of up to
// k_read_gap unneeded bytes and at most k_read_span bytes. A request through
// the destination QEMU's NBD export costs ~65 us when QEMU is idle, and
// 1.2-2 ms while it loads the migration stream (storage bench: 1301 reads
// in 2.6 s with these values, 2220 in 2.9 s with 16 KiB gaps and 256 KiB
// spans): few large reads beat many small ones.
inline constexpr std::uint64_t k_read_gap = 64u << 10;
inline constexpr std::uint64_t k_read_span = 1u << 20;

// One merged read: [offset, offset + length) of `disk` feeds the fetches
// `first` .. `first + count` of the sorted order it was planned from.
struct MergedRead {
  std::uint32_t disk = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::size_t first = 0;
  std::size_t count = 0;
};
// Places whose "disk" is at least this are local files (the receiver's
// backing files and scratch space, block_index.h's ReceivedBlocks), read with
// pread from the page cache, where a call costs little: their reads merge
// only blocks that touch.
inline constexpr std::uint32_t k_local_places = 0x80000000u;
// Plans the reads of k_ref_block blocks at `places` (disk, offset), which
// must be sorted by disk, then offset (duplicates allowed).
[[nodiscard]] std::vector<MergedRead> merge_reads(std::span<const std::pair<std::uint32_t, std::uint64_t>> places);

// The receiver's index. Move-only; not thread-safe.
class ReceivedBlocks {
 public:
  // Reads `out.size()` bytes of disk `disk` at `offset` (the destination's export).
  using ReadAt = std::function<Result<void>(std::uint32_t disk, std::uint64_t offset, std::span<std::uint8_t> out)>;

  // The scratch space (scratch_store.h): its first `memory_bytes` in memory,
  // the rest an unlinked file in $TMPDIR (else /tmp): nothing is left
  // behind, whatever ends the process. `copy_room`: the bytes of it that may
  // hold copies of new contents (after_write); by default `memory_bytes` and
  // half the space free in the file's filesystem now, at most `cap` blocks.
  // Blocks kept before an overwrite (before_write) are not counted against it.
  [[nodiscard]] static Result<ReceivedBlocks> create(std::size_t cap = k_max_indexed_blocks,
                                                     std::optional<std::uint64_t> copy_room = std::nullopt,
                                                     std::uint64_t memory_bytes = 0);

  // Before `batch` is written: every block it overwrites (partly or wholly,
  // with data or zeros) whose content is indexed there is read through
  // `read` and kept in the scratch space.
  [[nodiscard]] Result<void> before_write(const DiskBatch& batch, const ReadAt& read);
  // After `batch` was written: indexes its counted blocks (new contents only,
  // while fewer than `cap` are known), each copied to the scratch space while
  // the copy room lasts, else left on its disk. A failed scratch write (a
  // full $TMPDIR) ends the copying; it is not an error.
  void after_write(const DiskBatch& batch);
  // Fills each fetch with its content: a block the batches carried, from its
  // disk (through `read`) or the scratch space, else a block of a backing file
  // (`backings[d]`: disk d's index, null where it has none), all in merged
  // reads (merge_reads). Errc::corruption when a hash is in none of them
  // (nothing is read then).
  [[nodiscard]] Result<void> read(std::span<const BlockFetch> fetches, const ReadAt& read,
                                  std::span<const std::shared_ptr<const BackingBlocks>> backings = {}) const;

  std::size_t size() const noexcept { return m_where.size(); }
  // The scratch space's bytes: copies and blocks kept before an overwrite.
  std::uint64_t scratch_bytes() const noexcept { return m_scratch_end; }
  // The scratch space's bytes kept in memory (the first ones).
  std::uint64_t scratch_memory_bytes() const noexcept { return m_scratch.memory_bytes(); }
  // The contents resolved from their disks (those the copy room missed).
  std::size_t on_disk() const noexcept { return m_on_disk.size(); }

 private:
  // A content's place: a disk and offset, the scratch space (disk ==
  // k_scratch), or a disk's backing file (k_backing_base + the disk).
  struct Place {
    std::uint32_t disk = 0;
    std::uint64_t offset = 0;
  };
  static constexpr std::uint32_t k_scratch = UINT32_MAX;
  static constexpr std::uint32_t k_backing_base = k_local_places;  // + d: disk d's backing file
  static std::uint64_t block_key(std::uint32_t disk, std::uint64_t offset) noexcept {
    return (std::uint64_t{disk} << 48) | (offset / k_ref_block);
  }
  std::optional<Place> find(const BlockHash& h, std::span<const std::shared_ptr<const BackingBlocks>> backings) const;
  ReceivedBlocks(ScratchStore scratch, std::size_t cap, std::uint64_t copy_room)
      : m_scratch(std::move(scratch)), m_cap(cap), m_copy_room(copy_room) {}
  [[nodiscard]] Result<void> save_range(std::uint32_t disk, std::uint64_t offset, std::uint64_t length,
                                        const ReadAt& read);

  ScratchStore m_scratch;
  std::size_t m_cap;
  std::uint64_t m_copy_room;  // scratch bytes left for after_write's copies
  std::uint64_t m_scratch_end = 0;
  std::unordered_map<BlockHash, Place, BlockHashHasher> m_where;
  std::map<std::uint64_t, BlockHash> m_on_disk;  // block_key -> the indexed content the disk holds there
};

}  // namespace utsushi::livemig
