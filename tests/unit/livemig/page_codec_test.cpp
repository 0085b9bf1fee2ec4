#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>

#include "synthetic_stream.h"
#include "utsushi/livemig/page_codec.h"

using namespace utsushi;
using namespace utsushi::livemig;

namespace {

struct Harness {
  std::vector<RamBlock> blocks{{"pc.ram", 16 * 4096}};
  Bytes batch;
  PageEncoder enc{1 << 20, [this](Bytes& b, const std::array<std::uint64_t, k_page_kinds>&) -> Result<void> {
                    batch.insert(batch.end(), b.begin(), b.end());
                    return {};
                  }};
  TokenDecoder dec;
  Harness() { REQUIRE(enc.on_blocks(blocks)); }

  // Encodes one PAGE record, checks the decoder reproduces QEMU's bytes, and
  // returns the kind the encoder chose.
  PageKind send(std::uint64_t page, const Bytes& data, bool zero_record = false) {
    auto before = enc.kinds();
    PageRecord r{0, page, false, zero_record ? RecordKind::zero : RecordKind::page,
                 zero_record ? nullptr : data.data()};
    REQUIRE(enc.on_page(r));
    REQUIRE(enc.flush());
    Bytes expect;
    rebuild_page_record(expect, blocks, 0, page, false, r.kind, r.data);
    Bytes out;
    REQUIRE(dec.decode(batch, out));
    batch.clear();
    CHECK(out == expect);
    for (std::size_t k = 1; k < k_page_kinds; ++k) {
      if (enc.kinds()[k].records != before[k].records) {
        return static_cast<PageKind>(k);
      }
    }
    FAIL("no kind counted");
    return PageKind::fresh;
  }
};

}  // namespace

TEST_CASE("livemig::PageEncoder chooses each page kind", "[livemig][codec]") {
  Harness h;
  Bytes a = livemig::test::random_page(1);
  CHECK(h.send(0, a, true) == PageKind::zero);
  CHECK(h.send(1, Bytes(4096, 0)) == PageKind::zpage);
  CHECK(h.send(2, a) == PageKind::fresh);
  CHECK(h.send(2, a) == PageKind::same);
  CHECK(h.send(3, a) == PageKind::dup);
  Bytes b = a;
  for (int i = 0; i < 64; ++i) b[static_cast<std::size_t>(100 + i)] ^= 0x5a;
  CHECK(h.send(2, b) == PageKind::xor_delta);
  CHECK(h.enc.kinds()[static_cast<std::size_t>(PageKind::xor_delta)].token_bytes < 100);
  // A page that changed everywhere is sent fresh, not as a huge delta.
  CHECK(h.send(2, livemig::test::random_page(2)) == PageKind::fresh);
  // A zero slot that gets data is coded as a delta against zeros.
  Bytes sparse(4096, 0);
  sparse[10] = 1;
  CHECK(h.send(0, sparse) == PageKind::xor_delta);
  // dup of a slot whose content changed since is not used.
  CHECK(h.send(4, a) == PageKind::dup);  // slot 3 still holds a
  CHECK(h.send(3, livemig::test::random_page(3)) == PageKind::fresh);
}

TEST_CASE("livemig xor delta round trip and limits", "[livemig][codec]") {
  Bytes a = livemig::test::random_page(5);
  Bytes b = a;
  b[0] ^= 1;
  b[4095] ^= 2;
  for (int i = 2000; i < 2100; ++i) b[static_cast<std::size_t>(i)] ^= 0xff;
  Bytes runs;
  REQUIRE(encode_xor_delta(a.data(), b.data(), runs, 4096));
  Bytes c = a;
  REQUIRE(apply_xor_delta(runs, c.data()));
  CHECK(c == b);
  Bytes none;
  REQUIRE(encode_xor_delta(a.data(), a.data(), none, 10));
  CHECK(none.empty());
  Bytes big;
  CHECK_FALSE(encode_xor_delta(a.data(), livemig::test::random_page(6).data(), big, 3072));
  CHECK(big.empty());
  // A run past the end of the page is rejected.
  Bytes bad;
  put_varint(bad, 4090);
  put_varint(bad, 10);
  bad.resize(bad.size() + 10, 1);
  CHECK_FALSE(apply_xor_delta(bad, c.data()));
}

TEST_CASE("livemig::TokenDecoder rejects malformed tokens", "[livemig][codec]") {
  auto decode = [](const Bytes& batch) {
    TokenDecoder d;
    Bytes out;
    return d.decode(batch, out);
  };
  Bytes blocks;
  blocks.reserve(16);  // GCC 12 -O3 warns (stringop-overflow) on growth from empty here
  put_u8(blocks, k_token_blocks);
  put_varint(blocks, 1);
  put_varint(blocks, 6);
  put_string(blocks, "pc.ram");
  put_varint(blocks, 4 * 4096);
  REQUIRE(decode(blocks));

  SECTION("unknown tag") { CHECK_FALSE(decode(Bytes{0x33})); }
  SECTION("page before blocks") { CHECK_FALSE(decode(Bytes{0x80 | 1 | 0x10, 0, 0})); }
  SECTION("page outside the block") {
    Bytes b = blocks;
    b.insert(b.end(), {0x80 | 1 | 0x10, 0, 9});
    CHECK_FALSE(decode(b));
  }
  SECTION("same for a page never sent") {
    Bytes b = blocks;
    b.insert(b.end(), {0x80 | 3 | 0x10, 0, 1});
    CHECK_FALSE(decode(b));
  }
  SECTION("dup of an unsent slot") {
    Bytes b = blocks;
    b.insert(b.end(), {0x80 | 5 | 0x10, 0, 1, 0, 2});
    CHECK_FALSE(decode(b));
  }
  SECTION("truncated fresh page") {
    Bytes b = blocks;
    b.insert(b.end(), {0x80 | 6 | 0x10, 0, 1, 1, 2, 3});
    CHECK_FALSE(decode(b));
  }
  SECTION("raw token longer than the batch") {
    Bytes b{k_token_raw, 50, 1, 2};
    CHECK_FALSE(decode(b));
  }
}

TEST_CASE("livemig::PageEncoder batch limit may grow from inside its own flush", "[livemig][codec]") {
  // The pump starts with small batches and doubles the limit in the flush callback.
  std::vector<RamBlock> blocks{{"pc.ram", 64 * 4096}};
  std::vector<std::size_t> sizes;
  Bytes all;
  PageEncoder* self = nullptr;
  std::size_t limit = 8 * 1024;
  PageEncoder enc(limit, [&](Bytes& b, const std::array<std::uint64_t, k_page_kinds>&) -> Result<void> {
    sizes.push_back(b.size());
    all.insert(all.end(), b.begin(), b.end());
    limit *= 2;
    self->set_batch_limit(limit);
    return {};
  });
  self = &enc;
  REQUIRE(enc.on_blocks(blocks));
  Bytes expect;
  for (std::uint64_t page = 0; page < 64; ++page) {
    Bytes data = livemig::test::random_page(100 + page);
    PageRecord r{0, page, false, RecordKind::page, data.data()};
    REQUIRE(enc.on_page(r));
    rebuild_page_record(expect, blocks, 0, page, false, r.kind, r.data);
  }
  REQUIRE(enc.flush());
  // Every batch but the last reached the limit in force when it was built.
  REQUIRE(sizes.size() >= 3);
  std::size_t in_force = 8 * 1024;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    CHECK(sizes[i] >= in_force);
    CHECK(sizes[i] < in_force + 2 * 4096 + 64);  // one page (and its token header) past the limit at most
    in_force *= 2;
  }
  // And the batches still decode, in order, to QEMU's bytes.
  TokenDecoder dec;
  Bytes out;
  REQUIRE(dec.decode(all, out));
  CHECK(out.size() > 64 * 4096);
  CHECK(std::equal(out.end() - static_cast<std::ptrdiff_t>(expect.size()), out.end(), expect.begin()));
}

TEST_CASE("livemig::PageEncoder keeps the tail after RAM END for one last batch", "[livemig][codec]") {
  std::vector<RamBlock> blocks{{"pc.ram", 4 * 4096}};
  std::vector<std::size_t> sizes;
  PageEncoder* self = nullptr;
  PageEncoder enc(8 * 1024, [&](Bytes& b, const std::array<std::uint64_t, k_page_kinds>&) -> Result<void> {
    sizes.push_back(b.size());
    self->set_batch_limit(4 * 1024);  // ignored in the tail
    return {};
  });
  self = &enc;
  REQUIRE(enc.on_blocks(blocks));
  Bytes page = livemig::test::random_page(7);
  REQUIRE(enc.on_page(PageRecord{0, 0, false, RecordKind::page, page.data()}));
  REQUIRE(enc.flush_when_idle());  // before RAM END an idle pause flushes
  REQUIRE(sizes.size() == 1);
  REQUIRE(enc.on_section_end(false));
  CHECK_FALSE(enc.in_tail());
  REQUIRE(enc.on_section_end(true));
  CHECK(enc.in_tail());
  Bytes device_state(300 * 1024, 0x5a);  // far past the batch limit
  REQUIRE(enc.on_raw(device_state));
  REQUIRE(enc.flush_when_idle());  // QEMU pauses inside the tail: nothing leaves
  REQUIRE(enc.on_raw(Bytes{0x00, 0x06, 0, 0, 0, 2, '{', '}'}));  // EOF, vmdesc
  REQUIRE(enc.flush_when_idle());
  CHECK(sizes.size() == 1);
  REQUIRE(enc.flush());  // the stream ended
  REQUIRE(sizes.size() == 2);
  CHECK(sizes[1] > device_state.size() + 8);
}

namespace {

// A receiver's disk content by hash: what a DiskSink would read back.
struct MapBlocks final : BlockSource {
  std::vector<Bytes> known;
  std::vector<std::size_t> calls;  // fetches per read_blocks call
  Result<void> read_blocks(std::span<const BlockFetch> fetches) override {
    calls.push_back(fetches.size());
    for (const auto& f : fetches) {
      auto it = std::find_if(known.begin(), known.end(), [&](const Bytes& b) { return block_hash(b.data()) == f.hash; });
      if (it == known.end()) {
        return fail(Errc::corruption, "unknown block");
      }
      std::memcpy(f.out, it->data(), k_ref_block);
    }
    return {};
  }
};

}  // namespace

TEST_CASE("livemig page codec: a page equal to a sent disk block goes as a 16-byte reference", "[livemig][codec]") {
  Harness h;
  SentBlocks sent;
  MapBlocks disk;
  h.enc.set_disk_blocks(&sent);
  h.dec.set_block_source(&disk);
  Bytes a = livemig::test::random_page(11), b = livemig::test::random_page(12);
  const CountedBlock ca = counted_block(a.data());
  sent.publish(std::span(&ca, 1));
  disk.known = {a};
  CHECK(h.send(0, a) == PageKind::disk);
  CHECK(h.enc.kinds()[static_cast<std::size_t>(PageKind::disk)].token_bytes < 24);
  CHECK(h.send(1, b) == PageKind::fresh);  // not sent as a disk block
  CHECK(h.send(2, a) == PageKind::dup);    // another slot holds it: dup first
  // A small change of a sent page stays an XOR delta; a page rewritten with
  // the disk block's content is a reference again.
  Bytes b2 = b;
  b2[7] ^= 1;
  CHECK(h.send(1, b2) == PageKind::xor_delta);
  CHECK(h.send(1, a) != PageKind::fresh);
}

TEST_CASE("livemig page codec: disk references the receiver cannot resolve are refused", "[livemig][codec]") {
  Harness h;
  SentBlocks sent;
  Bytes a = livemig::test::random_page(13);
  const CountedBlock ca = counted_block(a.data());
  sent.publish(std::span(&ca, 1));
  h.enc.set_disk_blocks(&sent);
  PageRecord r{0, 0, false, RecordKind::page, a.data()};
  REQUIRE(h.enc.on_page(r));
  REQUIRE(h.enc.flush());
  Bytes out;
  SECTION("no block source: a session without disks") {
    auto d = h.dec.decode(h.batch, out);
    REQUIRE_FALSE(d);
    CHECK(d.error().code() == Errc::corruption);
    CHECK_THAT(d.error().message(), Catch::Contains("copies no disks"));
  }
  SECTION("a hash the source does not know") {
    MapBlocks disk;
    h.dec.set_block_source(&disk);
    auto d = h.dec.decode(h.batch, out);
    REQUIRE_FALSE(d);
    CHECK(d.error().code() == Errc::corruption);
  }
  SECTION("a truncated reference") {
    MapBlocks disk;
    disk.known = {a};
    h.dec.set_block_source(&disk);
    h.batch.pop_back();
    auto d = h.dec.decode(h.batch, out);
    REQUIRE_FALSE(d);
    CHECK(d.error().code() == Errc::corruption);
  }
}

TEST_CASE("livemig page codec: a batch's disk references are read together, and before a later token uses one",
          "[livemig][codec]") {
  Harness h;
  SentBlocks sent;
  MapBlocks disk;
  h.enc.set_disk_blocks(&sent);
  h.dec.set_block_source(&disk);
  std::vector<Bytes> pages;
  for (std::uint64_t i = 0; i < 6; ++i) {
    pages.push_back(livemig::test::random_page(100 + i));
    const CountedBlock ci = counted_block(pages.back().data());
    sent.publish(std::span(&ci, 1));
  }
  disk.known = pages;
  Bytes changed = pages[1];
  changed[9] ^= 0x40;
  // (page, content): six references, then in the same batch a dup of a
  // referenced slot, an XOR delta on one and a `same` of one, then two more.
  std::vector<std::pair<std::uint64_t, const Bytes*>> records;
  for (std::uint64_t i = 0; i < 4; ++i) records.emplace_back(i, &pages[i]);
  records.emplace_back(8, &pages[0]);   // dup of slot 0
  records.emplace_back(1, &changed);    // XOR delta on slot 1
  records.emplace_back(2, &pages[2]);   // same
  records.emplace_back(4, &pages[4]);
  records.emplace_back(5, &pages[5]);
  Bytes expect;
  for (const auto& [page, data] : records) {
    PageRecord r{0, page, false, RecordKind::page, data->data()};
    REQUIRE(h.enc.on_page(r));
    rebuild_page_record(expect, h.blocks, 0, page, false, RecordKind::page, data->data());
  }
  REQUIRE(h.enc.flush());
  CHECK(h.enc.kinds()[static_cast<std::size_t>(PageKind::disk)].records == 6);
  Bytes out;
  REQUIRE(h.dec.decode(h.batch, out));
  CHECK(out == expect);
  // Pages 0-3 are fetched when the dup needs slot 0; 4 and 5 at the batch's end.
  CHECK(disk.calls == std::vector<std::size_t>{4, 2});
}

TEST_CASE("livemig merge_reads: blocks near each other on one disk are read together", "[livemig][codec]") {
  using P = std::pair<std::uint32_t, std::uint64_t>;
  const std::uint64_t b = k_ref_block;
  std::vector<P> places{{0, 0}, {0, 0}, {0, b}, {0, 3 * b}, {0, 5 * b + k_read_gap}, {1, 2 * b}};
  auto reads = merge_reads(places);
  REQUIRE(reads.size() == 3);
  // A duplicate and a gap of one block are read in one request.
  CHECK((reads[0].disk == 0 && reads[0].offset == 0 && reads[0].length == 4 * b && reads[0].first == 0 &&
         reads[0].count == 4));
  // A gap wider than k_read_gap, or another disk, starts a new read.
  CHECK((reads[1].offset == 5 * b + k_read_gap && reads[1].length == b && reads[1].first == 4));
  CHECK((reads[2].disk == 1 && reads[2].offset == 2 * b && reads[2].length == b && reads[2].first == 5));
  CHECK(merge_reads({}).empty());
  // Local files (backing, scratch: pread from the page cache) merge only blocks that touch.
  auto local = merge_reads(std::vector<P>{{k_local_places, 0}, {k_local_places, b}, {k_local_places, 3 * b}});
  REQUIRE(local.size() == 2);
  CHECK((local[0].length == 2 * b && local[1].offset == 3 * b));

  // Blocks every k_read_gap bytes (gaps within it): a read stops at k_read_span.
  std::vector<P> strided;
  for (std::uint64_t i = 0; i <= k_read_span / k_read_gap; ++i) strided.emplace_back(2, i * k_read_gap);
  auto spans = merge_reads(strided);
  REQUIRE(spans.size() == 2);
  CHECK((spans[0].count == strided.size() - 1 && spans[0].length <= k_read_span));
  CHECK((spans[1].offset == k_read_span && spans[1].count == 1));
}

TEST_CASE("livemig::PageEncoder ends a batch once it stands for k_batch_stream_limit stream bytes",
          "[livemig][codec]") {
  // Duplicates of one page: a few bytes of tokens each, 4 KiB and more of stream.
  const std::uint64_t pages = 3 * (PageEncoder::k_batch_stream_limit / 4096);
  std::vector<RamBlock> blocks{{"pc.ram", pages * 4096}};
  std::vector<std::uint64_t> streams;
  std::vector<std::size_t> sizes;
  PageEncoder* self = nullptr;
  PageEncoder enc(1 << 20, [&](Bytes& b, const std::array<std::uint64_t, k_page_kinds>&) -> Result<void> {
    sizes.push_back(b.size());
    streams.push_back(self->batch_stream_bytes());
    return {};
  });
  self = &enc;
  REQUIRE(enc.on_blocks(blocks));
  Bytes data = livemig::test::random_page(7);
  std::uint64_t total = 0;
  for (std::uint64_t page = 0; page < pages; ++page) {
    REQUIRE(enc.on_page(PageRecord{0, page, false, RecordKind::page, data.data()}));
    Bytes rebuilt;
    rebuild_page_record(rebuilt, blocks, 0, page, false, RecordKind::page, data.data());
    total += rebuilt.size();
  }
  REQUIRE(enc.flush());
  REQUIRE(streams.size() >= 3);
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < streams.size(); ++i) {
    sum += streams[i];
    CHECK(sizes[i] < (1u << 20));  // not the token limit
    if (i + 1 < streams.size()) {
      CHECK(streams[i] >= PageEncoder::k_batch_stream_limit);
      CHECK(streams[i] < PageEncoder::k_batch_stream_limit + 2 * 4096);
    }
  }
  CHECK(sum == total);
  CHECK(enc.batch_stream_bytes() == 0);
}
