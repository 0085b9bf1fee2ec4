#include <sys/resource.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <map>
#include <set>

#include "synthetic_stream.h"
#include "utsushi/livemig/block_index.h"

using namespace utsushi;
using namespace utsushi::livemig;

namespace {

constexpr std::uint64_t B = k_ref_block;

Bytes block_of(std::uint8_t seed) { return livemig::test::random_page(seed); }

DiskBatch data_batch(std::uint32_t disk, std::uint64_t offset, const std::vector<Bytes>& blocks) {
  DiskBatch b{disk, {{offset, blocks.size() * B, DiskRangeKind::data}}, {}};
  for (const auto& x : blocks) {
    b.data.insert(b.data.end(), x.begin(), x.end());
  }
  return b;
}

// A destination disk: what write_batch would leave, and the reads it serves.
struct FakeDisks {
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint8_t> bytes;  // sparse; absent reads as zero
  int reads = 0;
  void write(const DiskBatch& b) {
    std::size_t at = 0;
    for (const auto& r : b.ranges) {
      for (std::uint64_t i = 0; i < r.length; ++i) {
        bytes[{b.disk, r.offset + i}] = r.kind == DiskRangeKind::data ? b.data[at + i] : 0;
      }
      at += r.kind == DiskRangeKind::data ? r.length : 0;
    }
  }
  // A batch as the receiver writes it: indexed before, written, indexed after.
  void apply(ReceivedBlocks& idx, const DiskBatch& batch) {
    REQUIRE(idx.before_write(batch, reader()));
    write(batch);
    idx.after_write(batch);
  }
  ReceivedBlocks::ReadAt reader() {
    return [this](std::uint32_t d, std::uint64_t off, std::span<std::uint8_t> out) -> Result<void> {
      ++reads;
      for (std::size_t i = 0; i < out.size(); ++i) {
        auto it = bytes.find({d, off + i});
        out[i] = it == bytes.end() ? 0 : it->second;
      }
      return {};
    };
  }
};

// Blocks of seeds 1..n (block_of).
std::vector<Bytes> blocks_of(std::uint8_t n) {
  std::vector<Bytes> out;
  for (std::uint8_t seed = 1; seed <= n; ++seed) {
    out.push_back(block_of(seed));
  }
  return out;
}

Result<void> read_one(const ReceivedBlocks& idx, const Bytes& content, Bytes& out, FakeDisks& disks) {
  out.resize(B);
  const BlockFetch f{block_hash(content.data()), out.data()};
  return idx.read(std::span(&f, 1), disks.reader());
}

Bytes read_back(ReceivedBlocks& idx, const Bytes& content, FakeDisks& disks) {
  Bytes out;
  REQUIRE(read_one(idx, content, out, disks));
  return out;
}

}  // namespace

TEST_CASE("livemig counted blocks: aligned, wholly inside a data range, not zero", "[livemig][blocks]") {
  Bytes a = block_of(1), b = block_of(2), z(B, 0);
  SECTION("aligned blocks of a data range, the zero one skipped") {
    auto batch = data_batch(0, 8 * B, {a, z, b});
    auto counted = counted_blocks(batch);
    REQUIRE(counted.size() == 2);
    CHECK(counted[0] == CountedBlock{block_hash(a.data()), block_anchor(a.data())});
    CHECK(counted[1] == counted_block(b.data()));
  }
  SECTION("a range starting 512 bytes into a block: only whole aligned blocks count") {
    DiskBatch batch{0, {{B + 512, 3 * B, DiskRangeKind::data}}, {}};
    batch.data.assign(B - 512, 7);  // the tail of block 1
    batch.data.insert(batch.data.end(), a.begin(), a.end());
    batch.data.insert(batch.data.end(), b.begin(), b.end());
    batch.data.insert(batch.data.end(), 512, 9);  // the head of block 4
    std::vector<std::uint64_t> offsets;
    for_each_counted_block(batch, [&](std::uint64_t off, const std::uint8_t* p) {
      offsets.push_back(off);
      CHECK(std::memcmp(p, off == 2 * B ? a.data() : b.data(), B) == 0);
    });
    CHECK(offsets == std::vector<std::uint64_t>{2 * B, 3 * B});
  }
  SECTION("zero ranges carry no blocks; data after them is found at its place") {
    DiskBatch batch{0, {{0, 64 * B, DiskRangeKind::zero}, {64 * B, B, DiskRangeKind::data}}, a};
    std::vector<std::uint64_t> offsets;
    for_each_counted_block(batch, [&](std::uint64_t off, const std::uint8_t*) { offsets.push_back(off); });
    CHECK(offsets == std::vector<std::uint64_t>{64 * B});
  }
}

TEST_CASE("livemig SentBlocks: a block may start where its anchor is known, never at zeros", "[livemig][blocks]") {
  SentBlocks sent;
  Bytes a = block_of(1), b = block_of(2);
  Bytes z = block_of(3);
  std::fill_n(z.begin(), k_anchor_bytes, 0);  // starts with zeros, the rest is not
  CHECK_FALSE(sent.may_start(block_anchor(a.data())));
  const std::vector<CountedBlock> blocks{counted_block(a.data()), counted_block(z.data())};
  sent.publish(blocks);
  CHECK(sent.may_start(block_anchor(a.data())));
  CHECK_FALSE(sent.may_start(block_anchor(b.data())));
  CHECK(block_anchor(z.data()) == zero_anchor());
  CHECK_FALSE(sent.may_start(zero_anchor()));
  CHECK(sent.contains(block_hash(z.data())));  // on a block boundary it is found
}

TEST_CASE("livemig SentBlocks keeps the first distinct contents up to its cap", "[livemig][blocks]") {
  SentBlocks sent(2);
  Bytes a = block_of(1), b = block_of(2), c = block_of(3);
  std::vector<CountedBlock> bs{counted_block(a.data()), counted_block(a.data()), counted_block(b.data()),
                               counted_block(c.data())};
  sent.publish(bs);
  CHECK(sent.size() == 2);
  CHECK(sent.contains(bs[0].hash));
  CHECK(sent.contains(bs[2].hash));
  CHECK_FALSE(sent.contains(bs[3].hash));
  CHECK_FALSE(sent.may_start(bs[3].anchor));  // a block past the cap is not marked either
}

TEST_CASE("livemig ReceivedBlocks resolves references whatever was written since", "[livemig][blocks]") {
  auto idx = ReceivedBlocks::create(k_max_indexed_blocks, 0);  // no copies: contents stay on their disks
  REQUIRE(idx);
  FakeDisks disks;
  Bytes a = block_of(1), b = block_of(2), c = block_of(3);
  disks.apply(*idx, data_batch(0, 0, {a, b}));
  disks.apply(*idx, data_batch(1, 4 * B, {c}));
  CHECK(idx->size() == 3);
  CHECK(read_back(*idx, a, disks) == a);
  CHECK(read_back(*idx, c, disks) == c);
  CHECK(idx->scratch_bytes() == 0);

  SECTION("a block overwritten with data: its old content is kept aside") {
    disks.apply(*idx, data_batch(0, 0, {c}));  // c's content again, at a's place
    CHECK(idx->scratch_bytes() == B);
    CHECK(read_back(*idx, a, disks) == a);
    CHECK(read_back(*idx, c, disks) == c);
    CHECK(idx->size() == 3);
  }
  SECTION("blocks partly overwritten by a zero range") {
    disks.apply(*idx, DiskBatch{0, {{B - 512, 1024, DiskRangeKind::zero}}, {}});  // the end of a, the start of b
    CHECK(idx->scratch_bytes() == 2 * B);
    CHECK(read_back(*idx, a, disks) == a);
    CHECK(read_back(*idx, b, disks) == b);
  }
  SECTION("writes elsewhere, or to another disk at the same offset, read nothing") {
    int before = disks.reads;
    disks.apply(*idx, data_batch(0, 16 * B, {block_of(4)}));
    disks.apply(*idx, data_batch(2, 0, {block_of(5)}));
    CHECK(disks.reads == before);
    CHECK(idx->scratch_bytes() == 0);
  }
  SECTION("an unknown content is a corrupt stream") {
    Bytes d = block_of(6), out(B);
    auto r = read_one(*idx, d, out, disks);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::corruption);
  }
}

TEST_CASE("livemig ReceivedBlocks keeps copies of new contents while its copy room lasts", "[livemig][blocks]") {
  auto idx = ReceivedBlocks::create(k_max_indexed_blocks, 3 * B);
  REQUIRE(idx);
  FakeDisks disks;
  Bytes a = block_of(1), b = block_of(2), c = block_of(3), d = block_of(4);
  disks.apply(*idx, data_batch(0, 0, {a, b, a}));  // a twice: one copy
  disks.apply(*idx, data_batch(1, 0, {c, d}));     // room for c only: d stays on disk 1
  CHECK(idx->size() == 4);
  CHECK(idx->scratch_bytes() == 3 * B);
  CHECK(idx->on_disk() == 1);
  for (const Bytes* x : {&a, &b, &c}) {
    CHECK(read_back(*idx, *x, disks) == *x);
  }
  CHECK(disks.reads == 0);
  CHECK(read_back(*idx, d, disks) == d);
  CHECK(disks.reads == 1);

  SECTION("overwriting a copied block keeps nothing more; overwriting d keeps d") {
    disks.reads = 0;
    disks.apply(*idx, data_batch(0, 0, {block_of(5), block_of(6)}));  // over a and b: no room left, both on disk 0
    CHECK(disks.reads == 0);
    CHECK(idx->scratch_bytes() == 3 * B);
    disks.apply(*idx, data_batch(1, B, {block_of(7)}));  // over d: saved first
    CHECK(disks.reads == 1);
    CHECK(idx->scratch_bytes() == 4 * B);
    for (const Bytes* x : {&a, &b, &c, &d}) {
      CHECK(read_back(*idx, *x, disks) == *x);
    }
  }
}

namespace {

// While it lives, files this process writes may not grow past `bytes` (the
// write fails with EFBIG, as a full $TMPDIR fails one with ENOSPC).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) : m_handler(std::signal(SIGXFSZ, SIG_IGN)) {
    ::getrlimit(RLIMIT_FSIZE, &m_old);
    struct rlimit small = m_old;
    small.rlim_cur = bytes;
    m_set = ::setrlimit(RLIMIT_FSIZE, &small) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &m_old);
    std::signal(SIGXFSZ, m_handler);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  bool set() const noexcept { return m_set; }

 private:
  struct rlimit m_old {};
  void (*m_handler)(int);
  bool m_set = false;
};

}  // namespace

TEST_CASE("livemig ReceivedBlocks: a scratch write that fails ends the copying, not the session", "[livemig][blocks]") {
  auto idx = ReceivedBlocks::create(k_max_indexed_blocks, 64 * B);
  REQUIRE(idx);
  FakeDisks disks;
  std::vector<Bytes> blocks = blocks_of(8);
  {
    FileSizeLimit limit(2 * B);  // the 8 copies get 2 blocks into the file, then the write fails
    REQUIRE(limit.set());
    disks.apply(*idx, data_batch(0, 0, blocks));
  }
  CHECK(idx->scratch_bytes() == 0);
  CHECK(idx->on_disk() == 8);
  disks.apply(*idx, data_batch(0, 64 * B, {block_of(9)}));  // no copies any more, though room is left
  CHECK(idx->scratch_bytes() == 0);
  CHECK(idx->on_disk() == 9);
  for (const auto& x : blocks) {
    CHECK(read_back(*idx, x, disks) == x);  // through the disk
  }
  CHECK(disks.reads == 8);
  // A block left on its disk is still kept aside before an overwrite (over the half-written copies).
  disks.apply(*idx, data_batch(0, 0, {block_of(10)}));
  CHECK(idx->scratch_bytes() == B);
  CHECK(read_back(*idx, blocks[0], disks) == blocks[0]);
}

TEST_CASE("livemig ReceivedBlocks by default keeps copies of what the batches carried", "[livemig][blocks]") {
  auto idx = ReceivedBlocks::create();
  REQUIRE(idx);
  FakeDisks disks;
  std::vector<Bytes> blocks = blocks_of(4);
  DiskBatch batch = data_batch(0, 0, blocks);
  disks.apply(*idx, batch);
  CHECK(idx->scratch_bytes() == 4 * B);
  CHECK(idx->on_disk() == 0);
  CHECK(read_back(*idx, blocks[2], disks) == blocks[2]);
  CHECK(disks.reads == 0);
}

TEST_CASE("livemig ReceivedBlocks and SentBlocks agree at the cap", "[livemig][blocks]") {
  auto idx = ReceivedBlocks::create(3);
  REQUIRE(idx);
  SentBlocks sent(3);
  FakeDisks disks;
  std::vector<DiskBatch> batches{data_batch(0, 0, {block_of(1), block_of(2)}), data_batch(0, 8 * B, {block_of(1)}),
                                 data_batch(0, 16 * B, {block_of(3), block_of(4), block_of(5)})};
  for (const auto& batch : batches) {
    disks.apply(*idx, batch);
    sent.publish(counted_blocks(batch));
  }
  CHECK(idx->size() == 3);
  CHECK(sent.size() == 3);
  for (std::uint8_t seed = 1; seed <= 5; ++seed) {
    Bytes x = block_of(seed), out(B);
    bool resolves = read_one(*idx, x, out, disks).has_value();
    CHECK(resolves == sent.contains(block_hash(x.data())));
  }
}

TEST_CASE("livemig ReceivedBlocks reads a batch of references in merged reads", "[livemig][blocks]") {
  auto idx = ReceivedBlocks::create(k_max_indexed_blocks, 0);
  REQUIRE(idx);
  FakeDisks disks;
  std::vector<Bytes> blocks = blocks_of(8);
  disks.apply(*idx, data_batch(0, 0, {blocks[0], blocks[1], blocks[2], blocks[3]}));
  disks.apply(*idx, data_batch(0, 64 * B, {blocks[4], blocks[5]}));
  disks.apply(*idx, data_batch(1, 0, {blocks[6], blocks[7]}));
  disks.apply(*idx, data_batch(0, 2 * B, {block_of(9)}));  // blocks[2] moves to the scratch file
  REQUIRE(idx->scratch_bytes() == B);
  // Asked for out of order, one twice: 0-1 and 3 (one read), 4-5 (one), disk 1 (one), the scratch file.
  std::vector<std::size_t> order{5, 0, 7, 2, 3, 1, 4, 6, 0};
  Bytes out(order.size() * B);
  std::vector<BlockFetch> fetches;
  for (std::size_t i = 0; i < order.size(); ++i) {
    fetches.push_back({block_hash(blocks[order[i]].data()), out.data() + i * B});
  }
  disks.reads = 0;
  REQUIRE(idx->read(fetches, disks.reader()));
  CHECK(disks.reads == 3);
  for (std::size_t i = 0; i < order.size(); ++i) {
    CHECK(std::equal(blocks[order[i]].begin(), blocks[order[i]].end(), out.begin() + static_cast<std::ptrdiff_t>(i * B)));
  }
}

namespace {

// A BlockSource that knows some contents by hash.
struct MapSource final : BlockSource {
  std::map<std::pair<std::uint64_t, std::uint64_t>, Bytes> known;
  int calls = 0;
  void add(const Bytes& b) {
    BlockHash h = block_hash(b.data());
    known[{h.high, h.low}] = b;
  }
  Result<void> read_blocks(std::span<const BlockFetch> fetches) override {
    ++calls;
    for (const auto& f : fetches) {
      auto it = known.find({f.hash.high, f.hash.low});
      if (it == known.end()) {
        return fail(Errc::corruption, "unknown content");
      }
      std::copy(it->second.begin(), it->second.end(), f.out);
    }
    return {};
  }
};

}  // namespace

TEST_CASE("livemig with_copies sends held blocks as hashes, resolve_copies restores them", "[livemig][blocks]") {
  std::vector<Bytes> blocks = blocks_of(5);
  DiskBatch batch = data_batch(2, 0, blocks);
  // A tail of 100 bytes, a zero block, and a range at a sector holding blocks[1].
  batch.ranges[0].length += 100;
  batch.data.insert(batch.data.end(), 100, 0x42);
  batch.ranges.push_back({64 * B, B, DiskRangeKind::data});
  batch.data.insert(batch.data.end(), B, 0);
  batch.ranges.push_back({80 * B + 512, 2 * B, DiskRangeKind::data});
  batch.data.insert(batch.data.end(), blocks[1].begin(), blocks[1].end());
  batch.data.insert(batch.data.end(), B, 0x17);

  MapSource source;
  for (int i : {1, 2, 4}) source.add(blocks[static_cast<std::size_t>(i)]);
  auto held = [&](const BlockHash& h) { return source.known.contains({h.high, h.low}); };
  DiskBatch wire = with_copies(batch, held);
  const std::vector<DiskRange> want = {{0, B, DiskRangeKind::data},
                                       {B, 2 * B, DiskRangeKind::copy},
                                       {3 * B, B, DiskRangeKind::data},
                                       {4 * B, B, DiskRangeKind::copy},
                                       {5 * B, 100, DiskRangeKind::data},
                                       {64 * B, B, DiskRangeKind::data},  // zeros are never copied
                                       {80 * B + 512, B, DiskRangeKind::copy},  // off its block
                                       {81 * B + 512, B, DiskRangeKind::data}};
  CHECK(wire.ranges == want);
  CHECK(copy_bytes(wire) == 4 * B);
  CHECK(wire.data.size() == batch.data.size() - 4 * B + 4 * k_disk_copy_hash);

  auto back = resolve_copies(wire, source);
  REQUIRE(back);
  CHECK(source.calls == 1);
  CHECK(back->disk == 2);
  CHECK(back->data == batch.data);
  CHECK(back->ranges == std::vector<DiskRange>{{0, 5 * B + 100, DiskRangeKind::data},
                                               {64 * B, B, DiskRangeKind::data},
                                               {80 * B + 512, 2 * B, DiskRangeKind::data}});

  // Nothing held: the batch as it is.
  DiskBatch same = with_copies(batch, [](const BlockHash&) { return false; });
  CHECK(same.ranges == batch.ranges);
  CHECK(same.data == batch.data);
  // A content the source does not hold: its error.
  source.known.erase(source.known.begin());
  auto missing = resolve_copies(wire, source);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Errc::corruption);
}

TEST_CASE("livemig with_copies finds held blocks at any sector, inside the range only", "[livemig][blocks]") {
  const std::vector<Bytes> blocks = blocks_of(4);
  // Like a tar member: a 1536-byte header, three held blocks back to back, a
  // 700-byte tail, then the start of a fourth held block cut by the range's end.
  DiskBatch batch{0, {{8 * B, 0, DiskRangeKind::data}}, Bytes(1536, 0x11)};
  for (int i : {0, 1, 2}) {
    batch.data.insert(batch.data.end(), blocks[static_cast<std::size_t>(i)].begin(),
                      blocks[static_cast<std::size_t>(i)].end());
  }
  batch.data.insert(batch.data.end(), 700, 0x22);
  batch.data.insert(batch.data.end(), blocks[3].begin(), blocks[3].begin() + static_cast<std::ptrdiff_t>(B - 512));
  batch.ranges[0].length = batch.data.size();

  MapSource source;
  for (const auto& b : blocks) source.add(b);
  auto held = [&](const BlockHash& h) { return source.known.contains({h.high, h.low}); };
  std::vector<CountedBlock> counted;
  DiskBatch wire = with_copies(batch, held, {}, &counted);
  CHECK(wire.ranges == std::vector<DiskRange>{{8 * B, 1536, DiskRangeKind::data},
                                              {8 * B + 1536, 3 * B, DiskRangeKind::copy},
                                              {11 * B + 1536, 700 + B - 512, DiskRangeKind::data}});
  // The counted blocks stay those on block boundaries, whatever was copied.
  CHECK(counted == counted_blocks(batch));
  CHECK(counted.size() == 4);
  auto back = resolve_copies(wire, source);
  REQUIRE(back);
  CHECK(back->ranges == batch.ranges);
  CHECK(back->data == batch.data);

  // An anchor test that says no: the windows at other sectors are not hashed, the boundaries still are.
  int asked = 0;
  DiskBatch refused = with_copies(batch, held, [&](std::uint64_t) { return ++asked, false; });
  CHECK(refused.ranges == batch.ranges);
  CHECK(asked == 28 - 4);  // the 28 sectors a whole window starts at, less the 4 block boundaries
  // The anchors of the held blocks: the same copies as with no anchor test.
  std::set<std::uint64_t> anchors;
  for (const auto& b : blocks) anchors.insert(block_anchor(b.data()));
  CHECK(with_copies(batch, held, [&](std::uint64_t a) { return anchors.contains(a); }).ranges == wire.ranges);

  // Held blocks on their boundaries, after one that is not.
  DiskBatch aligned = data_batch(0, 0, {Bytes(B, 0x33), blocks[0], blocks[1]});
  CHECK(with_copies(aligned, held).ranges == std::vector<DiskRange>{{0, B, DiskRangeKind::data},
                                                                   {B, 2 * B, DiskRangeKind::copy}});
}
