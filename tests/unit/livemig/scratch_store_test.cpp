// scratch_store.h: the receiver's scratch space, memory first, then a file.
#include "utsushi/livemig/scratch_store.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <numeric>

#include "test_support.h"
#include "utsushi/common/endian.h"

using namespace utsushi;
using namespace utsushi::livemig;
using utsushi::test::TempDir;

namespace {

Bytes counting(std::size_t n, std::uint8_t from) {
  Bytes b(n);
  std::iota(b.begin(), b.end(), from);
  return b;
}

}  // namespace

TEST_CASE("livemig scratch_memory_budget: a quarter of what the arriving guest leaves", "[livemig][scratch]") {
  CHECK(scratch_memory_budget(24ull << 30, 512ull << 20) == ((24ull << 30) - (512ull << 20)) / 4);
  CHECK(scratch_memory_budget(1ull << 30, 1ull << 30) == 0);
  CHECK(scratch_memory_budget(1ull << 30, 2ull << 30) == 0);
}

TEST_CASE("livemig ScratchStore: one run of bytes across memory and file", "[livemig][scratch]") {
  TempDir dir;
  auto s = ScratchStore::create(dir.path(), 10000);
  REQUIRE(s);
  CHECK(s->memory_bytes() == 10000);
  CHECK(s->file_free() > 0);
  const Bytes a = counting(9000, 1);
  const Bytes b = counting(4000, 7);  // 1000 bytes in memory, 3000 in the file
  REQUIRE(s->write(a, 0));
  REQUIRE(s->write(b, 9000));
  Bytes got(13000);
  REQUIRE(s->read(got, 0));
  CHECK(std::equal(a.begin(), a.end(), got.begin()));
  CHECK(std::equal(b.begin(), b.end(), got.begin() + 9000));
  Bytes tail(500);
  REQUIRE(s->read(tail, 12000));
  CHECK(std::equal(b.begin() + 3000, b.begin() + 3500, tail.begin()));
  // Nothing named in the directory: the file is unlinked from the start.
  CHECK(std::filesystem::is_empty(dir.path()));
  auto past = s->read(got, 20000);
  CHECK_FALSE(past);
}

TEST_CASE("livemig ScratchStore: without memory, all of it in the file", "[livemig][scratch]") {
  TempDir dir;
  auto s = ScratchStore::create(dir.path(), 0);
  REQUIRE(s);
  CHECK(s->memory_bytes() == 0);
  const Bytes a = counting(4096, 3);
  REQUIRE(s->write(a, 4096));
  Bytes got(4096);
  REQUIRE(s->read(got, 4096));
  CHECK(got == a);
  CHECK_FALSE(ScratchStore::create(dir.file("missing"), 0));
}
