// backing_blocks.h: the index of a backing image's blocks that memory pages
// may refer to, its reads, and the two ends' use of it (SentBlocks,
// ReceivedBlocks, BackingIndexer).
#include "utsushi/livemig/backing_blocks.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>

#include "synthetic_stream.h"
#include "test_support.h"
#include "utsushi/livemig/file_hash.h"

using namespace utsushi;
using namespace utsushi::livemig;
using utsushi::test::TempDir;

namespace {

constexpr std::uint64_t B = k_ref_block;

// Block contents: `seed` 1, 2, 3 are A, B, C of an image; `base` keeps the
// images of different tests apart (BackingBlocks::of_file remembers contents
// for the process's life).
Bytes block_of(std::uint32_t seed, std::uint32_t base = 0) { return livemig::test::random_page(base * 100 + seed); }

// A 1 MiB raw image: A at 0, a written zero block at 1 block, B at 16 blocks,
// A again at 32, C at 200; the rest a hole.
std::string make_raw(const TempDir& dir, const std::string& name = "base.raw", std::uint32_t base = 0) {
  std::string path = dir.file(name);
  utsushi::test::make_sparse_file(path, 1 << 20);
  utsushi::test::write_at(path, 0, block_of(1, base));
  utsushi::test::write_at(path, B, Bytes(B, 0));
  utsushi::test::write_at(path, 16 * B, block_of(2, base));
  utsushi::test::write_at(path, 32 * B, block_of(1, base));
  utsushi::test::write_at(path, 200 * B, block_of(3, base));
  return path;
}

std::shared_ptr<const BackingBlocks> build(const std::string& path, const std::string& format,
                                           std::size_t cap = k_max_backing_blocks) {
  auto b = BackingBlocks::build(path, format, {}, cap);
  REQUIRE(b);
  return *b;
}

std::optional<std::uint64_t> where(const BackingBlocks& b, std::uint32_t seed, std::uint32_t base = 0) {
  return b.find(block_hash(block_of(seed, base).data()));
}

}  // namespace

TEST_CASE("livemig BackingBlocks indexes each non-zero content at its first place", "[livemig][blocks]") {
  TempDir dir;
  auto raw = build(make_raw(dir), "raw");
  CHECK(raw->size() == 3);
  CHECK(where(*raw, 1) == 0);
  CHECK(where(*raw, 2) == 16 * B);
  CHECK(where(*raw, 3) == 200 * B);
  CHECK_FALSE(where(*raw, 4));
  CHECK_FALSE(raw->find(block_hash(Bytes(B, 0).data())));
  Bytes out(2 * B);
  REQUIRE(raw->read(200 * B, out));
  CHECK(std::equal(out.begin(), out.begin() + B, block_of(3).begin()));
  CHECK(std::all_of(out.begin() + B, out.end(), [](std::uint8_t c) { return c == 0; }));
  CHECK_FALSE(raw->read(1 << 20, out));  // past the end

  if (utsushi::test::have("qemu-img")) {
    // The same content as qcow2 (64 KiB clusters): the same index.
    std::string q = dir.file("base.qcow2");
    REQUIRE(utsushi::test::sh("qemu-img convert -f raw -O qcow2 " + dir.file("base.raw") + " " + q) == 0);
    auto qcow = build(q, "qcow2");
    CHECK(qcow->size() == 3);
    for (std::uint32_t seed : {1u, 2u, 3u}) {
      CHECK(where(*qcow, seed) == where(*raw, seed));
    }
    REQUIRE(qcow->read(16 * B, out));
    CHECK(std::equal(out.begin(), out.begin() + B, block_of(2).begin()));
  }
}

TEST_CASE("livemig BackingBlocks counts the first blocks up to its cap, duplicates included", "[livemig][blocks]") {
  TempDir dir;
  std::string path = make_raw(dir);
  // Non-zero blocks in offset order: A, B, A, C.
  auto two = build(path, "raw", 2);
  CHECK(where(*two, 1) == 0);
  CHECK(where(*two, 2) == 16 * B);
  CHECK_FALSE(where(*two, 3));
  auto three = build(path, "raw", 3);
  CHECK(three->size() == 2);  // the third block is A again
  CHECK_FALSE(where(*three, 3));
  CHECK(where(*build(path, "raw", 4), 3) == 200 * B);
}

TEST_CASE("livemig BackingBlocks: errors name the file, a stop request cancels", "[livemig][blocks]") {
  TempDir dir;
  auto missing = BackingBlocks::build(dir.file("none.qcow2"), "qcow2");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message(), Catch::Contains("none.qcow2"));
  std::stop_source stop;
  stop.request_stop();
  auto cancelled = BackingBlocks::build(make_raw(dir), "raw", stop.get_token());
  REQUIRE_FALSE(cancelled);
  CHECK(cancelled.error().code() == Errc::cancelled);
}

TEST_CASE("livemig BackingBlocks::of_file indexes a content once", "[livemig][blocks]") {
  TempDir dir;
  std::string a = make_raw(dir, "a.raw", 1);
  std::string b = make_raw(dir, "b.raw", 1);
  auto ha = file_content_hash(a);
  REQUIRE(ha);
  auto first = BackingBlocks::of_file(a, "raw", *ha);
  auto again = BackingBlocks::of_file(b, "raw", *ha);  // a copy: same content
  REQUIRE(first);
  REQUIRE(again);
  CHECK(first->get() == again->get());
  CHECK((*first)->path() == a);
}

TEST_CASE("livemig BackingBlocks::of_file: a build its own caller stopped is built again for another",
          "[livemig][blocks]") {
  TempDir dir;
  std::string path = make_raw(dir, "c.raw", 2);
  auto hash = file_content_hash(path);
  REQUIRE(hash);
  std::stop_source stopped;
  stopped.request_stop();
  auto cancelled = BackingBlocks::of_file(path, "raw", *hash, stopped.get_token());
  REQUIRE_FALSE(cancelled);
  CHECK(cancelled.error().code() == Errc::cancelled);
  // Not remembered: the next caller gets an index. Callers racing one that is stopped
  // retry rather than take its "cancelled"; threads exercise that path.
  std::vector<Result<std::shared_ptr<const BackingBlocks>>> got(4);
  {
    std::vector<std::jthread> callers;
    callers.emplace_back([&] { got[0] = BackingBlocks::of_file(path, "raw", *hash, stopped.get_token()); });
    for (std::size_t i = 1; i < got.size(); ++i) {
      callers.emplace_back([&, i] { got[i] = BackingBlocks::of_file(path, "raw", *hash); });
    }
  }
  for (std::size_t i = 1; i < got.size(); ++i) {
    REQUIRE(got[i]);
    CHECK((*got[i])->size() == 3);
  }
  CHECK((got[0] ? (*got[0])->size() == 3 : got[0].error().code() == Errc::cancelled));
}

TEST_CASE("livemig SentBlocks holds its backings' blocks once they are added", "[livemig][blocks]") {
  TempDir dir;
  SentBlocks sent;
  const BlockHash c = block_hash(block_of(3).data());
  const std::uint64_t anchor = block_anchor(block_of(3).data());
  CHECK_FALSE(sent.contains(c));
  CHECK_FALSE(sent.may_start(anchor));
  sent.add_backing(build(make_raw(dir), "raw"));
  CHECK(sent.contains(c));
  CHECK(sent.may_start(anchor));  // the index keeps each block's anchor
  CHECK_FALSE(sent.contains(block_hash(block_of(4).data())));
  CHECK_FALSE(sent.may_start(block_anchor(block_of(4).data())));
  CHECK(sent.size() == 0);
}

TEST_CASE("livemig ReceivedBlocks resolves backing blocks after the batches' ones", "[livemig][blocks]") {
  TempDir dir;
  auto backing = build(make_raw(dir), "raw");
  auto idx = ReceivedBlocks::create(k_max_indexed_blocks, 0);  // the carried blocks stay on their disks
  REQUIRE(idx);
  // Disk 1 carried block 4, and A (also in disk 1's backing) at 4 blocks.
  DiskBatch batch{1, {{0, 16 * B, DiskRangeKind::data}}, Bytes(16 * B, 0)};
  auto put = [&](std::uint64_t at, const Bytes& x) { std::copy(x.begin(), x.end(), batch.data.begin() + at); };
  put(0, block_of(4));
  put(4 * B, block_of(1));
  idx->after_write(batch);
  std::vector<std::pair<std::uint32_t, std::uint64_t>> disk_reads;
  auto read_disk = [&](std::uint32_t d, std::uint64_t off, std::span<std::uint8_t> out) -> Result<void> {
    disk_reads.emplace_back(d, off);
    std::copy_n(batch.data.begin() + static_cast<std::ptrdiff_t>(off), out.size(), out.begin());
    return {};
  };
  std::vector<std::shared_ptr<const BackingBlocks>> backings{nullptr, backing};
  Bytes out(4 * B);
  std::vector<BlockFetch> fetches;
  for (std::uint32_t seed : {3u, 4u, 1u, 2u}) {
    fetches.push_back({block_hash(block_of(seed).data()), out.data() + fetches.size() * B});
  }
  REQUIRE(idx->read(fetches, read_disk, backings));
  // 4 and A from disk 1 (one merged read), C and B from the backing.
  CHECK(disk_reads == std::vector<std::pair<std::uint32_t, std::uint64_t>>{{1, 0}});
  std::size_t i = 0;
  for (std::uint32_t seed : {3u, 4u, 1u, 2u}) {
    Bytes want = block_of(seed);
    CHECK(std::equal(want.begin(), want.end(), out.begin() + static_cast<std::ptrdiff_t>(i++ * B)));
  }
  // Without the backings, C is a reference nothing carried.
  auto alone = idx->read(std::span(fetches).first(1), read_disk);
  REQUIRE_FALSE(alone);
  CHECK(alone.error().code() == Errc::corruption);
}

TEST_CASE("livemig BackingIndexer builds each disk's index on its thread", "[livemig][blocks]") {
  TempDir dir;
  std::string path = make_raw(dir, "golden.raw", 3);
  auto hash = file_content_hash(path);
  REQUIRE(hash);
  std::vector<std::pair<std::size_t, std::size_t>> ready;  // (disk, blocks), written on the indexer's thread
  // Disk 0 has no backing file, disk 1's is gone, disk 2's is hashed by the indexer itself.
  BackingIndexer indexer({{"", "", ""}, {dir.file("gone.raw"), "raw", std::string(32, '0')}, {path, "raw", ""}},
                         [&](std::size_t disk, const std::shared_ptr<const BackingBlocks>& b) {
                           ready.emplace_back(disk, b->size());
                         });
  auto got = indexer.wait();
  REQUIRE(got.size() == 3);
  CHECK(got[0] == nullptr);
  CHECK(got[1] == nullptr);
  REQUIRE(got[2] != nullptr);
  CHECK(where(*got[2], 2, 3) == 16 * B);
  CHECK(ready == std::vector<std::pair<std::size_t, std::size_t>>{{2, 3}});
  REQUIRE(indexer.first_error());
  CHECK_THAT(indexer.first_error()->message(), Catch::Contains("gone.raw"));
  CHECK(indexer.wait().size() == 3);  // again: the same answer
}
