// disk_cache.h: backing files' content hashes and block indexes remembered
// between processes; its record layouts, its directory rules, its use by
// BackingBlocks::of_file.
#include "utsushi/livemig/disk_cache.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "synthetic_stream.h"
#include "test_support.h"
#include "utsushi/livemig/backing_blocks.h"

using namespace utsushi;
using namespace utsushi::livemig;
using utsushi::test::TempDir;

namespace {

constexpr std::uint64_t B = k_ref_block;
const std::string k_hash = "0123456789abcdef0123456789abcdef";

std::vector<IndexedBlock> three_blocks() {
  return {{{5, 1}, 0, 11}, {{7, 1}, 16 * B, 12}, {{1, 9}, 200 * B, 13}};  // sorted by (high, low)
}

// Sets the process's cache directory for one test, and turns it off after.
struct CacheDir {
  explicit CacheDir(const std::string& dir) { set_disk_cache_dir(dir); }
  ~CacheDir() { set_disk_cache_dir(""); }
};

std::size_t files_in(const std::string& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) {
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("livemig block index record: decodes what it encodes", "[livemig][disk_cache]") {
  auto entries = three_blocks();
  Bytes rec = encode_block_index(1000, entries);
  CHECK(rec.size() == 32 + 3 * 32 + 8);
  auto back = decode_block_index(rec, 1000, 1 << 20);
  REQUIRE(back);
  REQUIRE(back->size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK((*back)[i].hash == entries[i].hash);
    CHECK((*back)[i].offset == entries[i].offset);
    CHECK((*back)[i].anchor == entries[i].anchor);
  }
  CHECK(decode_block_index(encode_block_index(7, {}), 7, 0).value().empty());
}

TEST_CASE("livemig block index record: refuses what it did not write for this use", "[livemig][disk_cache]") {
  const Bytes good = encode_block_index(1000, three_blocks());
  auto refused = [](const Bytes& rec, std::size_t cap = 1000, std::uint64_t size = 1 << 20) {
    auto r = decode_block_index(rec, cap, size);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::corruption);
    return r.error().message();
  };
  CHECK_THAT(refused(Bytes(good.begin(), good.begin() + 20)), Catch::Contains("truncated"));
  CHECK_THAT(refused(Bytes(good.begin(), good.end() - 1)), Catch::Contains("size"));
  Bytes magic = good;
  magic[0] ^= 1;
  CHECK_THAT(refused(magic), Catch::Contains("magic"));
  CHECK_THAT(refused(good, 999), Catch::Contains("cap"));
  Bytes flipped = good;
  flipped[40] ^= 1;
  CHECK_THAT(refused(flipped), Catch::Contains("checksum"));
  CHECK_THAT(refused(good, 1000, 200 * B), Catch::Contains("outside"));  // the last block ends past the image
  auto unsorted = three_blocks();
  std::swap(unsorted[0], unsorted[2]);
  CHECK_THAT(refused(encode_block_index(1000, unsorted)), Catch::Contains("order"));
  auto unaligned = three_blocks();
  unaligned[1].offset += 512;
  CHECK_THAT(refused(encode_block_index(1000, unaligned)), Catch::Contains("outside"));
  CHECK_THAT(refused(encode_block_index(2, three_blocks()), 2), Catch::Contains("count"));  // more than the cap
}

TEST_CASE("livemig file hash record: only for the same file version", "[livemig][disk_cache]") {
  FileVersion v{2049, 1234, 1 << 30, 1700000000, 5, 1700000001, 6};
  std::string rec = encode_file_hash(v, k_hash);
  CHECK(decode_file_hash(rec, v) == k_hash);
  FileVersion later = v;
  later.ctime_ns++;
  CHECK_FALSE(decode_file_hash(rec, later));
  CHECK_FALSE(decode_file_hash(rec.substr(0, rec.size() - 1), v));  // no newline: cut short
  CHECK_FALSE(decode_file_hash(rec + "x\n", v));
  CHECK_FALSE(decode_file_hash(encode_file_hash(v, "../../etc/passwd"), v));
  CHECK(is_content_hash(k_hash));
  CHECK_FALSE(is_content_hash("0123456789ABCDEF0123456789abcdef"));
  CHECK_FALSE(is_content_hash(k_hash + "0"));
}

TEST_CASE("livemig disk cache: remembers in its directory, off without one", "[livemig][disk_cache]") {
  TempDir dir;
  const std::string cache = dir.file("cache");
  FileVersion v{1, 2, 3, 4, 5, 6, 7};
  cache_file_hash(v, k_hash);  // off: nothing written anywhere
  CHECK_FALSE(cached_file_hash(v));
  CacheDir on(cache);
  cache_file_hash(v, k_hash);
  CHECK(cached_file_hash(v) == k_hash);
  struct stat st {};
  REQUIRE(::stat(cache.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  cache_block_index("qcow2", k_hash, 1000, three_blocks());
  CHECK(cached_block_index("qcow2", k_hash, 1000, 1 << 20).value().size() == 3);
  CHECK_FALSE(cached_block_index("raw", k_hash, 1000, 1 << 20));     // another format
  CHECK_FALSE(cached_block_index("qcow2", k_hash, 999, 1 << 20));    // another cap
  CHECK_FALSE(cached_block_index("qcow2", k_hash, 1000, 100 * B));   // an image too small for its offsets
  // A name that is not a content hash never becomes a path.
  cache_block_index("qcow2", "../escape", 1000, three_blocks());
  cache_block_index("../qcow2", k_hash, 1000, three_blocks());
  CHECK(files_in(cache) == 2);
  CHECK(files_in(dir.path()) == 1);
}

TEST_CASE("livemig disk cache: a directory others may write is not used", "[livemig][disk_cache]") {
  TempDir dir;
  const std::string cache = dir.file("cache");
  CacheDir on(cache);
  FileVersion v{1, 2, 3, 4, 5, 6, 7};
  cache_file_hash(v, k_hash);
  REQUIRE(cached_file_hash(v) == k_hash);
  REQUIRE(::chmod(cache.c_str(), 0777) == 0);
  CHECK_FALSE(cached_file_hash(v));
  REQUIRE(::chmod(cache.c_str(), 0700) == 0);
  CHECK(cached_file_hash(v) == k_hash);
}

TEST_CASE("livemig disk cache: keeps the most recently used indexes", "[livemig][disk_cache]") {
  TempDir dir;
  const std::string cache = dir.file("cache");
  CacheDir on(cache);
  auto hash_n = [](std::size_t n) { return fmt::format("{:032x}", n); };
  // File times move with the kernel's coarse clock (one tick: 10 ms at the
  // slowest, HZ=100): 25 ms apart, no two tie.
  auto tick = [] { std::this_thread::sleep_for(std::chrono::milliseconds(25)); };
  for (std::size_t n = 0; n < k_max_cached_indexes + 3; ++n) {
    cache_block_index("raw", hash_n(n), 1000, three_blocks());
    tick();
    (void)cached_block_index("raw", hash_n(0), 1000, 1 << 20);  // the first stays in use
    tick();
  }
  CHECK(files_in(cache) == k_max_cached_indexes);
  CHECK(cached_block_index("raw", hash_n(0), 1000, 1 << 20));
  CHECK(cached_block_index("raw", hash_n(k_max_cached_indexes + 2), 1000, 1 << 20));
}

TEST_CASE("livemig BackingBlocks::of_file: an index from the disk cache finds what a build finds",
          "[livemig][disk_cache][blocks]") {
  TempDir dir;
  CacheDir on(dir.file("cache"));
  const std::string path = dir.file("base.raw");
  utsushi::test::make_sparse_file(path, 1 << 20);
  const Bytes a = livemig::test::random_page(9101);
  const Bytes b = livemig::test::random_page(9102);
  utsushi::test::write_at(path, 3 * B, a);
  utsushi::test::write_at(path, 40 * B, b);
  const std::string content = "feedfacefeedfacefeedfacefeedface";  // of_file trusts its caller's hash
  auto built = BackingBlocks::build(path, "raw");
  REQUIRE(built);
  std::vector<IndexedBlock> entries{{block_hash(a.data()), 3 * B, block_anchor(a.data())},
                                    {block_hash(b.data()), 40 * B, block_anchor(b.data())}};
  if (entries[1].hash.high < entries[0].hash.high) {
    std::swap(entries[0], entries[1]);
  }
  cache_block_index("raw", content, k_max_backing_blocks, entries);
  auto cached = BackingBlocks::of_file(path, "raw", content);  // a content this process never indexed
  REQUIRE(cached);
  CHECK((*cached)->size() == 2);
  CHECK((*cached)->find(block_hash(a.data())) == 3 * B);
  CHECK((*cached)->find(block_hash(b.data())) == 40 * B);
  Bytes read(B);
  REQUIRE((*cached)->read(40 * B, read));
  CHECK(read == b);
}
