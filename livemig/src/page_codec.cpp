// Page encoder/decoder (token format in page_codec.h).
#include "utsushi/livemig/page_codec.h"

#include <xxhash.h>

#include <fmt/core.h>

#include <cstring>
#include <optional>

#include "utsushi/common/zero.h"
#include "utsushi/livemig/stream_format.h"

namespace utsushi::livemig {

namespace {

constexpr std::size_t k_page = qemu::k_page_size;
static_assert(k_page == k_ref_block, "a disk reference stands for one page");
constexpr std::size_t k_disk_ref_bytes = 16;

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}
std::uint64_t slot_key(std::uint32_t block, std::uint64_t page) { return (std::uint64_t{block} << 40) | page; }

std::size_t record_qemu_bytes(const PageRecord& r, const std::vector<RamBlock>& blocks) {
  return 8 + (r.cont ? 0 : 1 + blocks[r.block].idstr.size()) + (r.kind == RecordKind::zero ? 1 : k_page);
}

}  // namespace

std::string_view page_kind_name(std::size_t kind_index) noexcept {
  static constexpr std::string_view names[k_page_kinds] = {"stream", "zero", "zpage", "same", "xor", "dup", "fresh", "disk"};
  return kind_index < k_page_kinds ? names[kind_index] : "?";
}

bool encode_xor_delta(const std::uint8_t* old_page, const std::uint8_t* cur_page, Bytes& out, std::size_t limit) {
  const std::size_t start = out.size();
  std::size_t pos = 0;
  std::size_t last_end = 0;  // end of the previous diff run
  while (pos < k_page) {
    // Skip equal 8-byte words.
    while (pos < k_page && std::memcmp(old_page + pos, cur_page + pos, 8) == 0) {
      pos += 8;
    }
    if (pos >= k_page) {
      break;
    }
    std::size_t run_start = pos;
    // Extend over differing words; stop at two consecutive equal words.
    while (pos < k_page) {
      if (std::memcmp(old_page + pos, cur_page + pos, 8) != 0) {
        pos += 8;
      } else if (pos + 8 < k_page && std::memcmp(old_page + pos + 8, cur_page + pos + 8, 8) != 0) {
        pos += 16;
      } else {
        break;
      }
    }
    if (pos > k_page) {
      pos = k_page;
    }
    put_varint(out, run_start - last_end);
    put_varint(out, pos - run_start);
    for (std::size_t i = run_start; i < pos; ++i) {
      out.push_back(static_cast<std::uint8_t>(old_page[i] ^ cur_page[i]));
    }
    last_end = pos;
    if (out.size() - start > limit) {
      out.resize(start);
      return false;
    }
  }
  return true;
}

Result<void> apply_xor_delta(std::span<const std::uint8_t> runs, std::uint8_t* page) {
  Cursor c(runs, "livemig xor delta");
  std::size_t pos = 0;
  while (!c.done()) {
    auto zrun = UTSUSHI_TRY(c.varint());
    auto nrun = UTSUSHI_TRY(c.varint());
    if (nrun == 0 || zrun > k_page || nrun > k_page || pos + zrun + nrun > k_page) {
      return fail(Errc::corruption, fmt::format("livemig xor delta: run {}+{} at {} outside the page", zrun, nrun, pos));
    }
    pos += zrun;
    auto bytes = UTSUSHI_TRY(c.take(nrun));
    for (std::size_t i = 0; i < nrun; ++i) {
      page[pos + i] ^= bytes[i];
    }
    pos += nrun;
  }
  return {};
}

// ---- encoder ----

PageEncoder::PageEncoder(std::size_t batch_limit, FlushFn flush)
    : m_limit(std::max<std::size_t>(batch_limit, 1)), m_flush(std::move(flush)) {
  m_batch.reserve(batch_limit + 2 * k_page);
}

Result<void> PageEncoder::maybe_flush() {
  if (m_batch.size() >= m_limit || (!m_in_tail && m_batch_stream >= k_batch_stream_limit)) {
    return flush();
  }
  return {};
}

Result<void> PageEncoder::on_section_end(bool last) {
  if (last) {
    m_in_tail = true;
    m_limit = k_tail_limit;
  }
  return {};
}

Result<void> PageEncoder::flush() {
  if (m_batch.empty()) {
    return {};
  }
  UTSUSHI_TRY(m_flush(m_batch, m_share));
  m_batch.clear();
  m_share.fill(0);
  m_batch_stream = 0;
  return {};
}

Result<void> PageEncoder::on_raw(std::span<const std::uint8_t> bytes) {
  // Split large verbatim runs (the tail) so batches stay near the limit.
  while (!bytes.empty()) {
    std::size_t n = std::min(bytes.size(), m_limit);
    std::size_t before = m_batch.size();
    put_u8(m_batch, k_token_raw);
    put_varint(m_batch, n);
    put_bytes(m_batch, bytes.first(n));
    m_share[0] += m_batch.size() - before;
    m_kinds[0].qemu_bytes += n;
    m_batch_stream += n;
    m_kinds[0].token_bytes += m_batch.size() - before;
    bytes = bytes.subspan(n);
    UTSUSHI_TRY(maybe_flush());
  }
  return {};
}

Result<void> PageEncoder::on_blocks(const std::vector<RamBlock>& blocks) {
  UTSUSHI_TRY(m_store.reset(blocks));
  m_by_hash.clear();
  std::size_t before = m_batch.size();
  put_u8(m_batch, k_token_blocks);
  put_varint(m_batch, blocks.size());
  for (const auto& b : blocks) {
    put_varint(m_batch, b.idstr.size());
    put_string(m_batch, b.idstr);
    put_varint(m_batch, b.used_length);
  }
  m_share[0] += m_batch.size() - before;
  m_kinds[0].token_bytes += m_batch.size() - before;
  m_tok_block = UINT32_MAX;
  return {};
}

PageKind PageEncoder::classify(const PageRecord& r, std::uint8_t* slot, Bytes& payload) {
  payload.clear();
  SlotState st = m_store.state(r.block, r.page);
  if (r.kind == RecordKind::zero) {
    m_store.clear(r.block, r.page);
    return PageKind::zero;
  }
  const std::uint8_t* cur = r.data;
  if (is_all_zero(cur, k_page)) {
    m_store.clear(r.block, r.page);
    return PageKind::zpage;
  }
  if (st == SlotState::data && std::memcmp(slot, cur, k_page) == 0) {
    return PageKind::same;
  }
  PageKind kind = PageKind::fresh;
  std::uint64_t h = XXH3_64bits(cur, k_page);
  auto it = m_by_hash.find(h);
  if (it != m_by_hash.end()) {
    auto ob = static_cast<std::uint32_t>(it->second >> 40);
    std::uint64_t op = it->second & ((std::uint64_t{1} << 40) - 1);
    if (m_store.state(ob, op) == SlotState::data && std::memcmp(m_store.page(ob, op), cur, k_page) == 0) {
      put_varint(payload, ob);
      put_varint(payload, op);
      kind = PageKind::dup;
    }
  }
  if (kind == PageKind::fresh && st != SlotState::unsent) {
    // A zero slot holds zeros, so the XOR base is always the slot content.
    m_runs.clear();
    if (encode_xor_delta(slot, cur, m_runs, k_xor_limit)) {
      put_varint(payload, m_runs.size());
      put_bytes(payload, m_runs);
      kind = PageKind::xor_delta;
    }
  }
  if (m_disk_blocks != nullptr && (kind == PageKind::fresh || (kind == PageKind::xor_delta &&
                                                               payload.size() > k_disk_ref_bytes))) {
    BlockHash bh = block_hash(cur);
    if (m_disk_blocks->contains(bh)) {
      payload.clear();
      put_be64(payload, bh.high);
      put_be64(payload, bh.low);
      kind = PageKind::disk;
    }
  }
  if (kind == PageKind::fresh) {
    payload.insert(payload.end(), cur, cur + k_page);
  }
  std::memcpy(slot, cur, k_page);
  m_store.set_state(r.block, r.page, SlotState::data);
  m_by_hash[h] = slot_key(r.block, r.page);
  return kind;
}

Result<void> PageEncoder::on_page(const PageRecord& r) {
  if (!m_store.valid(r.block, r.page)) {
    return fail(Errc::internal, "livemig encoder: page record outside the block list");
  }
  PageKind kind = classify(r, m_store.page(r.block, r.page), m_payload);
  std::size_t before = m_batch.size();
  std::uint8_t tag = k_token_page | static_cast<std::uint8_t>(kind) | (r.cont ? k_token_cont : 0);
  if (r.block != m_tok_block) {
    put_u8(m_batch, tag | k_token_newblock);
    put_varint(m_batch, r.block);
    put_varint(m_batch, r.page);
  } else {
    put_u8(m_batch, tag);
    put_varint(m_batch, zigzag(static_cast<std::int64_t>(r.page) - static_cast<std::int64_t>(m_tok_page) - 1));
  }
  m_tok_block = r.block;
  m_tok_page = r.page;
  std::size_t header = m_batch.size() - before;
  put_bytes(m_batch, m_payload);
  auto idx = static_cast<std::size_t>(kind);
  m_kinds[idx].header_bytes += header;
  m_share[idx] += m_batch.size() - before;
  m_kinds[idx].records++;
  m_kinds[idx].token_bytes += m_batch.size() - before;
  const std::uint64_t qemu_bytes = record_qemu_bytes(r, m_store.blocks());
  m_kinds[idx].qemu_bytes += qemu_bytes;
  m_batch_stream += qemu_bytes;
  return maybe_flush();
}

// ---- decoder ----

Result<void> TokenDecoder::fetch_pending(Bytes& out) {
  if (m_fetches.empty()) {
    return {};
  }
  UTSUSHI_TRY(m_blocks->read_blocks(m_fetches));
  for (std::size_t i = 0; i < m_fetches.size(); ++i) {
    std::memcpy(out.data() + m_fetch_out_at[i], m_fetches[i].out, k_page);
  }
  m_fetches.clear();
  m_fetch_out_at.clear();
  m_fetch_slots.clear();
  return {};
}

Result<void> TokenDecoder::decode(std::span<const std::uint8_t> batch, Bytes& out) {
  Cursor c(batch, "livemig token batch");
  while (!c.done()) {
    auto tag = UTSUSHI_TRY(c.u8());
    if (tag == k_token_raw) {
      auto n = UTSUSHI_TRY(c.varint());
      auto bytes = UTSUSHI_TRY(c.take(n));
      put_bytes(out, bytes);
      m_kinds[0].qemu_bytes += n;
      continue;
    }
    if (tag == k_token_blocks) {
      auto count = UTSUSHI_TRY(c.varint());
      if (count == 0 || count > 4096) {
        return fail(Errc::corruption, fmt::format("livemig: block list of {} entries", count));
      }
      std::vector<RamBlock> blocks;
      for (std::uint64_t i = 0; i < count; ++i) {
        auto len = UTSUSHI_TRY(c.varint());
        if (len == 0 || len > 255) {
          return fail(Errc::corruption, "livemig: block idstr length out of range");
        }
        auto id = UTSUSHI_TRY(c.take(len));
        auto used = UTSUSHI_TRY(c.varint());
        if (used == 0 || used % k_page != 0 || used > (std::uint64_t{1} << 46)) {
          return fail(Errc::corruption, "livemig: block length invalid");
        }
        blocks.push_back({std::string(reinterpret_cast<const char*>(id.data()), id.size()), used});
      }
      UTSUSHI_TRY(fetch_pending(out));
      UTSUSHI_TRY(m_store.reset(blocks));
      m_tok_block = UINT32_MAX;
      continue;
    }
    if ((tag & k_token_page) == 0 || (tag & 0x60) != 0) {
      return fail(Errc::corruption, fmt::format("livemig: unknown token tag {:#04x}", tag));
    }
    auto kind_bits = tag & k_token_kind_mask;
    if (kind_bits < static_cast<int>(PageKind::zero) || kind_bits > static_cast<int>(PageKind::disk)) {
      return fail(Errc::corruption, fmt::format("livemig: unknown page kind {}", kind_bits));
    }
    auto kind = static_cast<PageKind>(kind_bits);
    std::uint32_t block = m_tok_block;
    std::uint64_t page = 0;
    if (tag & k_token_newblock) {
      auto b = UTSUSHI_TRY(c.varint());
      if (b >= m_store.blocks().size()) {
        return fail(Errc::corruption, fmt::format("livemig: token names block {} of {}", b, m_store.blocks().size()));
      }
      block = static_cast<std::uint32_t>(b);
      page = UTSUSHI_TRY(c.varint());
    } else {
      if (block == UINT32_MAX) {
        return fail(Errc::corruption, "livemig: page token before any block");
      }
      page = static_cast<std::uint64_t>(static_cast<std::int64_t>(m_tok_page) + 1 + unzigzag(UTSUSHI_TRY(c.varint())));
    }
    if (!m_store.valid(block, page)) {
      return fail(Errc::corruption, fmt::format("livemig: page {} outside block {}", page, block));
    }
    m_tok_block = block;
    m_tok_page = page;
    std::uint8_t* slot = m_store.page(block, page);
    if (m_fetch_slots.contains(slot)) {
      UTSUSHI_TRY(fetch_pending(out));
    }
    bool cont = (tag & k_token_cont) != 0;
    std::optional<BlockHash> fetch;
    SlotState st = m_store.state(block, page);
    switch (kind) {
      case PageKind::zero:
      case PageKind::zpage:
        m_store.clear(block, page);
        break;
      case PageKind::same:
        if (st != SlotState::data) {
          return fail(Errc::corruption, "livemig: 'same' token for a page never sent");
        }
        break;
      case PageKind::xor_delta: {
        if (st == SlotState::unsent) {
          return fail(Errc::corruption, "livemig: xor token for a page never sent");
        }
        auto n = UTSUSHI_TRY(c.varint());
        auto runs = UTSUSHI_TRY(c.take(n));
        UTSUSHI_TRY(apply_xor_delta(runs, slot));
        m_store.set_state(block, page, SlotState::data);
        break;
      }
      case PageKind::dup: {
        auto ob = UTSUSHI_TRY(c.varint());
        auto op = UTSUSHI_TRY(c.varint());
        if (ob >= m_store.blocks().size() || !m_store.valid(static_cast<std::uint32_t>(ob), op) ||
            m_store.state(static_cast<std::uint32_t>(ob), op) != SlotState::data) {
          return fail(Errc::corruption, "livemig: dup token names a slot without data");
        }
        if (m_fetch_slots.contains(m_store.page(static_cast<std::uint32_t>(ob), op))) {
          UTSUSHI_TRY(fetch_pending(out));
        }
        std::memmove(slot, m_store.page(static_cast<std::uint32_t>(ob), op), k_page);
        m_store.set_state(block, page, SlotState::data);
        break;
      }
      case PageKind::fresh: {
        auto bytes = UTSUSHI_TRY(c.take(k_page));
        std::memcpy(slot, bytes.data(), k_page);
        m_store.set_state(block, page, SlotState::data);
        break;
      }
      case PageKind::disk: {
        auto ref = UTSUSHI_TRY(c.take(k_disk_ref_bytes));
        if (m_blocks == nullptr) {
          return fail(Errc::corruption, "livemig: a page refers to a disk block, and this session copies no disks");
        }
        fetch = BlockHash{be64_at(ref, 8), be64_at(ref, 0)};
        m_store.set_state(block, page, SlotState::data);
        break;
      }
    }
    RecordKind rk = kind == PageKind::zero ? RecordKind::zero : RecordKind::page;
    std::size_t before = out.size();
    rebuild_page_record(out, m_store.blocks(), block, page, cont, rk, slot);
    if (fetch) {  // the record's page is filled in by fetch_pending
      m_fetches.push_back({*fetch, slot});
      m_fetch_out_at.push_back(out.size() - k_page);
      m_fetch_slots.insert(slot);
      if (m_fetches.size() >= k_max_fetches) {
        UTSUSHI_TRY(fetch_pending(out));
      }
    }
    auto idx = static_cast<std::size_t>(kind);
    m_kinds[idx].records++;
    m_kinds[idx].qemu_bytes += out.size() - before;
  }
  return fetch_pending(out);
}

}  // namespace utsushi::livemig
