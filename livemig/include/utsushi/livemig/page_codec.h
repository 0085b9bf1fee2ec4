#pragma once
// The page codec: turns parser events into livemig tokens (PageEncoder, on the
// source host) and tokens back into QEMU's exact stream bytes (TokenDecoder,
// on the destination host). Both keep a PageStore of the last-sent content of
// every page, so each page is coded against what the destination already holds:
//
//   kind   meaning                                   token payload
//   zero   QEMU ZERO record                          none
//   zpage  PAGE record whose content is all zero     none
//   same   PAGE record equal to the last-sent page   none
//   xor    PAGE record, XOR delta vs last-sent       varint n | n bytes of runs
//   dup    PAGE record equal to another slot's       varint block | varint page
//          last-sent content (xxh3 hash, verified)
//   fresh  anything else                             4096 bytes
//   disk   PAGE record equal to a disk block this    16 bytes: XXH3-128 of the
//          session's disk passes carried (block_      content, high half first,
//          index.h; protocol 6) or a block of a      big-endian
//          disk's backing file (backing_blocks.h;
//          protocol 7)
//
// Token stream (the uncompressed content of a DATA frame; see frame.h):
//   0x01 RAW    varint n | n verbatim stream bytes
//   0x02 BLOCKS varint count | { varint len | idstr | varint used_length }
//   0x80|kind|0x08 if QEMU's CONTINUE flag|0x10 if the block changes
//               [varint block if 0x10] | varint page (absolute after a block
//               change, else zigzag(page - previous page - 1)) | payload
// XOR runs follow XBZRLE's shape (qemu/qemu migration/xbzrle.c): repeated
// {varint zero_run | varint diff_run | diff_run bytes of old^new}; the last
// zero run is omitted. Every length is checked while decoding.

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "utsushi/livemig/block_index.h"
#include "utsushi/livemig/page_store.h"
#include "utsushi/livemig/stream_parser.h"

namespace utsushi::livemig {

enum class PageKind : std::uint8_t { zero = 1, zpage, same, xor_delta, dup, fresh, disk };
inline constexpr std::size_t k_page_kinds = 8;  // indices 1..7 used; 0 = verbatim stream bytes
std::string_view page_kind_name(std::size_t kind_index) noexcept;

inline constexpr std::uint8_t k_token_raw = 0x01;
inline constexpr std::uint8_t k_token_blocks = 0x02;
inline constexpr std::uint8_t k_token_page = 0x80;
inline constexpr std::uint8_t k_token_cont = 0x08;
inline constexpr std::uint8_t k_token_newblock = 0x10;
inline constexpr std::uint8_t k_token_kind_mask = 0x07;

// An XOR delta larger than this is sent as a fresh page instead.
inline constexpr std::size_t k_xor_limit = 3072;

// Per-kind accounting: records, bytes QEMU produced for them, token bytes
// before compression, and link bytes (compressed frame bytes apportioned by
// token share; filled in by the transport).
struct KindCounters {
  std::uint64_t records = 0;
  std::uint64_t qemu_bytes = 0;
  std::uint64_t token_bytes = 0;
  std::uint64_t header_bytes = 0;  // of token_bytes: tag and page position (no payload)
  double wire_bytes = 0;
};
using KindTable = std::array<KindCounters, k_page_kinds>;

// Appends the XOR-run encoding of old^cur to `out`. Returns false (and leaves
// `out` as it was) when the encoding would exceed `limit` bytes.
bool encode_xor_delta(const std::uint8_t* old_page, const std::uint8_t* cur_page, Bytes& out, std::size_t limit);
// Applies runs to `page` in place. Fails with Errc::corruption on a run past
// the page end or a zero-length diff run.
[[nodiscard]] Result<void> apply_xor_delta(std::span<const std::uint8_t> runs, std::uint8_t* page);

// Sender side. Receives parser events and accumulates tokens into a batch;
// calls `flush` with the batch (and per-kind token byte counts of that batch)
// whenever it reaches `batch_limit` bytes or k_batch_stream_limit stream
// bytes, and on flush() (the sender calls
// flush_when_idle() whenever QEMU has no more bytes ready, so a batch never
// waits for input). `flush` may consume the batch.
//
// The tail: after RAM END the stream holds only device state, QEMU_VM_EOF
// and the vmdesc. All of it stays in one last batch, emitted only by flush()
// (up to k_tail_limit bytes; a larger tail is cut there): the receiver feeds
// the destination its last batch only once the whole stream verified, so a
// destination never gets its EOF, and could never finish loading and start,
// before the sender knows the stream arrived intact.
class PageEncoder final : public StreamSink {
 public:
  using FlushFn = std::function<Result<void>(Bytes& batch, const std::array<std::uint64_t, k_page_kinds>& share)>;
  PageEncoder(std::size_t batch_limit, FlushFn flush);

  [[nodiscard]] Result<void> on_raw(std::span<const std::uint8_t> bytes) override;
  [[nodiscard]] Result<void> on_blocks(const std::vector<RamBlock>& blocks) override;
  [[nodiscard]] Result<void> on_page(const PageRecord& record) override;
  [[nodiscard]] Result<void> on_section_end(bool last) override;
  // Emits the pending batch, if any.
  [[nodiscard]] Result<void> flush();
  // As flush(), except in the tail (kept whole for the last batch).
  [[nodiscard]] Result<void> flush_when_idle() { return m_in_tail ? Result<void>{} : flush(); }
  bool in_tail() const noexcept { return m_in_tail; }
  static constexpr std::size_t k_tail_limit = 32u << 20;  // half the largest frame payload
  // Outside the tail a batch also ends once it stands for this many stream
  // bytes (QEMU's, as the receiver rebuilds them): references and zeros
  // make a batch of tokens stand for up to ~230 times its size, and the
  // flow control (frame.h, k_flow_window) counts stream bytes per batch.
  static constexpr std::uint64_t k_batch_stream_limit = 8u << 20;
  // The stream bytes of the pending batch (in the flush callback: of the
  // batch being flushed).
  std::uint64_t batch_stream_bytes() const noexcept { return m_batch_stream; }
  bool pending() const noexcept { return !m_batch.empty(); }
  // Batches from now on end at `limit` bytes (the flush callback may call it;
  // the tail keeps k_tail_limit).
  void set_batch_limit(std::size_t limit) noexcept {
    if (!m_in_tail) {
      m_limit = std::max<std::size_t>(limit, 1);
    }
  }

  const KindTable& kinds() const noexcept { return m_kinds; }
  KindTable& kinds() noexcept { return m_kinds; }
  // Pages equal to a block in `blocks` (null: none) go as `disk` references,
  // unless an XOR delta is smaller. `blocks` must outlive the encoder.
  void set_disk_blocks(const SentBlocks* blocks) noexcept { m_disk_blocks = blocks; }

 private:
  PageKind classify(const PageRecord& r, std::uint8_t* slot, Bytes& payload);
  [[nodiscard]] Result<void> maybe_flush();

  std::size_t m_limit;
  bool m_in_tail = false;  // after RAM END
  FlushFn m_flush;
  Bytes m_batch;
  Bytes m_payload;
  Bytes m_runs;  // scratch for XOR runs, reused so no page allocates
  std::array<std::uint64_t, k_page_kinds> m_share{};
  std::uint64_t m_batch_stream = 0;
  PageStore m_store;
  std::unordered_map<std::uint64_t, std::uint64_t> m_by_hash;  // xxh3 -> block << 40 | page
  const SentBlocks* m_disk_blocks = nullptr;
  std::uint32_t m_tok_block = UINT32_MAX;
  std::uint64_t m_tok_page = 0;
  KindTable m_kinds{};
};

// Receiver side: decodes token batches (in order) into QEMU stream bytes.
class TokenDecoder {
 public:
  // Appends the rebuilt stream bytes of `batch` to `out`. Any malformed token
  // (unknown tag, bad block/page, length past the end, dup of an unsent slot,
  // a disk reference with no block source or one it does not know) is
  // Errc::corruption; the decoder must not be used after an error.
  [[nodiscard]] Result<void> decode(std::span<const std::uint8_t> batch, Bytes& out);
  const KindTable& kinds() const noexcept { return m_kinds; }
  // Where `disk` references are read (null: none are accepted). `source`
  // must outlive its use here.
  void set_block_source(BlockSource* source) noexcept { m_blocks = source; }

 private:
  // `disk` pages waiting for their content: read with the others of their
  // batch (one BlockSource call, merged reads) into their slots, then copied
  // into the rebuilt records at m_fetch_out_at. Fetched early when a later
  // token of the batch uses such a slot, a block list replaces the slots, or
  // k_max_fetches wait.
  static constexpr std::size_t k_max_fetches = 16384;
  [[nodiscard]] Result<void> fetch_pending(Bytes& out);

  PageStore m_store;
  BlockSource* m_blocks = nullptr;
  std::vector<BlockFetch> m_fetches;       // each one's `out` is its slot
  std::vector<std::size_t> m_fetch_out_at;  // where its page goes in the rebuilt stream
  std::unordered_set<const std::uint8_t*> m_fetch_slots;
  std::uint32_t m_tok_block = UINT32_MAX;
  std::uint64_t m_tok_page = 0;
  KindTable m_kinds{};
};

}  // namespace utsushi::livemig
