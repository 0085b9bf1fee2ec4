#include "utsushi/livemig/block_index.h"

#include <fcntl.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "utsushi/common/log.h"
#include "utsushi/livemig/backing_blocks.h"

namespace utsushi::livemig {

BlockHash block_hash(const std::uint8_t* block) noexcept {
  XXH128_hash_t h = XXH3_128bits(block, k_ref_block);
  return {h.low64, h.high64};
}

std::uint64_t block_anchor(const std::uint8_t* block) noexcept { return XXH3_64bits(block, k_anchor_bytes); }

std::uint64_t zero_anchor() noexcept {
  static const std::uint64_t anchor = [] {
    const std::array<std::uint8_t, k_anchor_bytes> zeros{};
    return block_anchor(zeros.data());
  }();
  return anchor;
}

namespace {

bool all_zero(const std::uint8_t* p) noexcept {
  return p[0] == 0 && std::memcmp(p, p + 1, k_ref_block - 1) == 0;
}

std::uint64_t round_up(std::uint64_t v) noexcept { return (v + k_ref_block - 1) / k_ref_block * k_ref_block; }

}  // namespace

void for_each_counted_block(std::uint64_t offset, std::span<const std::uint8_t> data,
                            const std::function<void(std::uint64_t, const std::uint8_t*)>& fn) {
  const std::uint64_t end = offset + data.size();
  for (std::uint64_t off = round_up(offset); off + k_ref_block <= end; off += k_ref_block) {
    const std::uint8_t* block = data.data() + (off - offset);
    if (!all_zero(block)) {
      fn(off, block);
    }
  }
}

void for_each_counted_block(const DiskBatch& batch,
                            const std::function<void(std::uint64_t, const std::uint8_t*)>& fn) {
  std::size_t at = 0;  // the range's first byte in batch.data
  for (const auto& r : batch.ranges) {
    if (r.kind != DiskRangeKind::data) {
      continue;
    }
    for_each_counted_block(r.offset, std::span(batch.data).subspan(at, r.length), fn);
    at += r.length;
  }
}

CountedBlock counted_block(const std::uint8_t* block) noexcept { return {block_hash(block), block_anchor(block)}; }

std::vector<CountedBlock> counted_blocks(const DiskBatch& batch) {
  std::vector<CountedBlock> out;
  for_each_counted_block(batch, [&](std::uint64_t, const std::uint8_t* block) { out.push_back(counted_block(block)); });
  return out;
}

namespace {

// Appends `r` (with `body`, its part of the data) to `out`, merged into the
// last range when that one has the same kind and ends where `r` starts.
void append_range(DiskBatch& out, const DiskRange& r, std::span<const std::uint8_t> body) {
  if (!out.ranges.empty() && out.ranges.back().kind == r.kind &&
      out.ranges.back().offset + out.ranges.back().length == r.offset) {
    out.ranges.back().length += r.length;
  } else {
    out.ranges.push_back(r);
  }
  out.data.insert(out.data.end(), body.begin(), body.end());
}

}  // namespace

namespace {

// The counted blocks of one data range at `offset`, with their offsets.
std::vector<std::pair<std::uint64_t, CountedBlock>> range_blocks(std::uint64_t offset,
                                                                 std::span<const std::uint8_t> bytes) {
  std::vector<std::pair<std::uint64_t, CountedBlock>> out;
  for_each_counted_block(offset, bytes, [&](std::uint64_t off, const std::uint8_t* block) {
    out.emplace_back(off, counted_block(block));
  });
  return out;
}

// Appends data range `r` (with `bytes`, its data) to `out`, each window the
// receiver holds as a copy range (with_copies' search).
void append_with_copies(DiskBatch& out, const DiskRange& r, std::span<const std::uint8_t> bytes,
                        std::span<const std::pair<std::uint64_t, CountedBlock>> blocks, const HeldTest& held,
                        const AnchorTest& may_start) {
  const std::uint64_t end = r.offset + r.length;  // no overflow: a checked range
  std::uint64_t pos = r.offset;                   // the first byte not yet appended
  std::size_t next = 0;                           // the first counted block at or after `at`
  std::uint64_t at = (r.offset + k_disk_copy_align - 1) / k_disk_copy_align * k_disk_copy_align;
  while (at < end && end - at >= k_ref_block) {
    std::optional<BlockHash> h;
    if (at % k_ref_block == 0) {
      while (next < blocks.size() && blocks[next].first < at) {
        ++next;
      }
      if (next < blocks.size() && blocks[next].first == at) {
        h = blocks[next].second.hash;  // an all-zero block has none: nobody holds it
      }
    } else {
      const std::uint8_t* window = bytes.data() + (at - r.offset);
      if (!may_start || may_start(block_anchor(window))) {
        h = block_hash(window);
      }
    }
    if (!h || !held(*h)) {
      at += k_disk_copy_align;
      continue;
    }
    if (at > pos) {
      append_range(out, {pos, at - pos, DiskRangeKind::data}, bytes.subspan(pos - r.offset, at - pos));
    }
    Bytes name;
    put_be64(name, h->high);
    put_be64(name, h->low);
    append_range(out, {at, k_ref_block, DiskRangeKind::copy}, name);
    pos = at += k_ref_block;
  }
  if (end > pos) {
    append_range(out, {pos, end - pos, DiskRangeKind::data}, bytes.subspan(pos - r.offset));
  }
}

}  // namespace

DiskBatch with_copies(const DiskBatch& batch, const HeldTest& held, const AnchorTest& may_start,
                      std::vector<CountedBlock>* counted) {
  DiskBatch out{batch.disk, {}, {}};
  out.data.reserve(batch.data.size());
  std::size_t at = 0;  // the range's first byte in batch.data
  for (const auto& r : batch.ranges) {
    if (r.kind != DiskRangeKind::data) {
      append_range(out, r, {});
      continue;
    }
    const auto bytes = std::span<const std::uint8_t>(batch.data).subspan(at, r.length);
    at += r.length;
    const auto blocks = range_blocks(r.offset, bytes);
    if (counted != nullptr) {
      for (const auto& b : blocks) {
        counted->push_back(b.second);
      }
    }
    append_with_copies(out, r, bytes, blocks, held, may_start);
  }
  if (out.ranges.size() > k_max_disk_ranges) {
    return batch;
  }
  return out;  // moved: a conditional expression would copy the data
}

std::uint64_t copy_bytes(const DiskBatch& wire) noexcept {
  std::uint64_t n = 0;
  for (const auto& r : wire.ranges) {
    n += r.kind == DiskRangeKind::copy ? r.length : 0;
  }
  return n;
}

Result<DiskBatch> resolve_copies(const DiskBatch& wire, BlockSource& source) {
  std::uint64_t size = 0;
  for (const auto& r : wire.ranges) {
    size += r.kind == DiskRangeKind::zero ? 0 : r.length;  // at most k_max_disk_data (decode_disk_batch)
  }
  DiskBatch out{wire.disk, {}, {}};
  out.data.reserve(size);  // no reallocation: the fetches point into it
  std::vector<BlockFetch> fetches;
  std::size_t at = 0;  // the range's first byte in wire.data
  for (const auto& r : wire.ranges) {
    if (r.kind == DiskRangeKind::zero) {
      append_range(out, r, {});
    } else if (r.kind == DiskRangeKind::data) {
      append_range(out, r, std::span(wire.data).subspan(at, r.length));
      at += r.length;
    } else {
      const std::size_t first = out.data.size();
      append_range(out, {r.offset, r.length, DiskRangeKind::data}, {});
      out.data.resize(first + r.length);
      for (std::uint64_t b = 0; b < r.length / k_ref_block; ++b) {
        BlockHash h{be64_at(wire.data, at + 8), be64_at(wire.data, at)};
        fetches.push_back({h, out.data.data() + first + b * k_ref_block});
        at += k_disk_copy_hash;
      }
    }
  }
  if (!fetches.empty()) {
    UTSUSHI_TRY_CTX(source.read_blocks(fetches),
                    fmt::format("the copy ranges of a batch of disk {} at {}", wire.disk, wire.ranges.front().offset));
  }
  return out;
}

// ---- sender ----

void SentBlocks::mark(std::vector<std::uint64_t>& bits, std::uint64_t key) noexcept {
  const std::size_t bit = key % k_filter_bits;
  bits[bit / 64] |= std::uint64_t{1} << (bit % 64);
}

bool SentBlocks::marked(const std::vector<std::uint64_t>& bits, std::uint64_t key) noexcept {
  const std::size_t bit = key % k_filter_bits;
  return (bits[bit / 64] >> (bit % 64) & 1) != 0;
}

void SentBlocks::publish(std::span<const CountedBlock> blocks) {
  std::lock_guard lock(m_mutex);
  for (const auto& b : blocks) {
    if (m_set.size() >= m_cap) {
      return;
    }
    if (m_set.insert(b.hash).second) {
      mark(m_hash_bits, b.hash.low);
      mark(m_anchor_bits, b.anchor);
    }
  }
}

void SentBlocks::add_backing(std::shared_ptr<const BackingBlocks> backing) {
  std::lock_guard lock(m_mutex);
  for (const auto& e : backing->entries()) {
    mark(m_hash_bits, e.hash.low);
    mark(m_anchor_bits, e.anchor);
  }
  m_backings.push_back(std::move(backing));
}

bool SentBlocks::may_start(std::uint64_t a) const {
  std::lock_guard lock(m_mutex);
  return a != zero_anchor() && marked(m_anchor_bits, a);
}

bool SentBlocks::contains(const BlockHash& h) const {
  std::lock_guard lock(m_mutex);
  if (!marked(m_hash_bits, h.low)) {
    return false;
  }
  return m_set.contains(h) || std::any_of(m_backings.begin(), m_backings.end(),
                                          [&](const auto& b) { return b->find(h).has_value(); });
}

std::size_t SentBlocks::size() const {
  std::lock_guard lock(m_mutex);
  return m_set.size();
}

// ---- receiver ----

Result<ReceivedBlocks> ReceivedBlocks::create(std::size_t cap, std::optional<std::uint64_t> copy_room,
                                              std::uint64_t memory_bytes) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  auto scratch = UTSUSHI_TRY(ScratchStore::create(dir, memory_bytes));
  if (!copy_room) {
    copy_room = std::min<std::uint64_t>(scratch.memory_bytes() + scratch.file_free() / 2,
                                        std::uint64_t{cap} * k_ref_block);
  }
  return ReceivedBlocks(std::move(scratch), cap, *copy_room);
}

// Moves every indexed content that [offset, offset + length) of `disk`
// touches into the scratch space.
Result<void> ReceivedBlocks::save_range(std::uint32_t disk, std::uint64_t offset, std::uint64_t length,
                                        const ReadAt& read) {
  auto it = m_on_disk.lower_bound(block_key(disk, offset));
  const std::uint64_t last = block_key(disk, offset + length - 1);
  std::array<std::uint8_t, k_ref_block> old{};
  while (it != m_on_disk.end() && it->first <= last) {
    const std::uint64_t at = (it->first & ((std::uint64_t{1} << 48) - 1)) * k_ref_block;
    UTSUSHI_TRY(read(disk, at, old));
    UTSUSHI_TRY_CTX(m_scratch.write(old, m_scratch_end), "keeping a block that memory pages may refer to");
    m_where[it->second] = Place{k_scratch, m_scratch_end};
    m_scratch_end += k_ref_block;
    it = m_on_disk.erase(it);
  }
  return {};
}

Result<void> ReceivedBlocks::before_write(const DiskBatch& batch, const ReadAt& read) {
  if (m_on_disk.empty()) {
    return {};
  }
  for (const auto& r : batch.ranges) {
    if (r.length > 0) {
      UTSUSHI_TRY(save_range(batch.disk, r.offset, r.length, read));
    }
  }
  return {};
}

void ReceivedBlocks::after_write(const DiskBatch& batch) {
  Bytes copies;                                           // appended to the scratch space in one write
  std::vector<std::pair<BlockHash, std::uint64_t>> kept;  // their contents and disk offsets
  for_each_counted_block(batch, [&](std::uint64_t off, const std::uint8_t* block) {
    if (m_where.size() >= m_cap) {
      return;
    }
    BlockHash h = block_hash(block);
    auto [it, added] = m_where.try_emplace(h, Place{batch.disk, off});
    if (!added) {
      return;
    }
    if (copies.size() + k_ref_block <= m_copy_room) {
      it->second = Place{k_scratch, m_scratch_end + copies.size()};
      copies.insert(copies.end(), block, block + k_ref_block);
      kept.emplace_back(h, off);
    } else {
      m_on_disk[block_key(batch.disk, off)] = h;
    }
  });
  if (copies.empty()) {
    return;
  }
  if (auto w = m_scratch.write(copies, m_scratch_end); !w) {
    UTSUSHI_LOG_WARN("the receiver's scratch space (memory, then $TMPDIR, else /tmp) takes no more copies ({}): referenced "
                     "blocks are read through the destination's disk exports from now on, more slowly",
                     w.error().message());
    m_copy_room = 0;
    for (const auto& [h, off] : kept) {
      m_where[h] = Place{batch.disk, off};
      m_on_disk[block_key(batch.disk, off)] = h;
    }
    return;
  }
  m_scratch_end += copies.size();
  m_copy_room -= copies.size();
}

std::vector<MergedRead> merge_reads(std::span<const std::pair<std::uint32_t, std::uint64_t>> places) {
  std::vector<MergedRead> reads;
  for (std::size_t i = 0; i < places.size(); ++i) {
    const auto [disk, offset] = places[i];
    if (!reads.empty()) {
      MergedRead& m = reads.back();
      const std::uint64_t end = m.offset + m.length;
      const std::uint64_t new_end = std::max(end, offset + k_ref_block);
      const std::uint64_t gap = disk >= k_local_places ? 0 : k_read_gap;
      if (m.disk == disk && offset <= end + gap && new_end - m.offset <= k_read_span) {
        m.length = new_end - m.offset;
        ++m.count;
        continue;
      }
    }
    reads.push_back({disk, offset, k_ref_block, i, 1});
  }
  return reads;
}

std::optional<ReceivedBlocks::Place> ReceivedBlocks::find(
    const BlockHash& h, std::span<const std::shared_ptr<const BackingBlocks>> backings) const {
  if (auto it = m_where.find(h); it != m_where.end()) {
    return it->second;
  }
  for (std::size_t d = 0; d < backings.size(); ++d) {
    if (backings[d] == nullptr) {
      continue;
    }
    if (auto off = backings[d]->find(h)) {
      return Place{k_backing_base + static_cast<std::uint32_t>(d), *off};
    }
  }
  return std::nullopt;
}

Result<void> ReceivedBlocks::read(std::span<const BlockFetch> fetches, const ReadAt& read_disk,
                                  std::span<const std::shared_ptr<const BackingBlocks>> backings) const {
  struct Item {
    Place place;
    std::uint8_t* out;
  };
  std::vector<Item> items;
  items.reserve(fetches.size());
  for (const auto& f : fetches) {
    auto place = find(f.hash, backings);
    if (!place) {
      return fail(Errc::corruption,
                  fmt::format("livemig: a reference names disk content {:016x}{:016x} that no disk batch carried "
                              "and no backing file holds",
                              f.hash.high, f.hash.low));
    }
    items.push_back({*place, f.out});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return std::pair(a.place.disk, a.place.offset) < std::pair(b.place.disk, b.place.offset);
  });
  std::vector<std::pair<std::uint32_t, std::uint64_t>> places;
  places.reserve(items.size());
  for (const auto& i : items) {
    places.emplace_back(i.place.disk, i.place.offset);
  }
  Bytes buf;
  for (const auto& m : merge_reads(places)) {
    buf.resize(m.length);
    if (m.disk == k_scratch) {
      UTSUSHI_TRY(m_scratch.read(buf, m.offset));
    } else if (m.disk >= k_backing_base) {
      UTSUSHI_TRY(backings[m.disk - k_backing_base]->read(m.offset, buf));
    } else {
      UTSUSHI_TRY(read_disk(m.disk, m.offset, buf));
    }
    for (std::size_t i = m.first; i < m.first + m.count; ++i) {
      std::memcpy(items[i].out, buf.data() + (items[i].place.offset - m.offset), k_ref_block);
    }
  }
  return {};
}

}  // namespace utsushi::livemig
