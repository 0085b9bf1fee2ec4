// file_hash.h: XXH3-128 of a whole file, holes hashed as zeros without
// reading them, remembered per file version.
#include "utsushi/livemig/file_hash.h"

#include <xxhash.h>

#include <catch2/catch.hpp>
#include <fmt/core.h>

#include "test_support.h"

using namespace utsushi;
using namespace utsushi::livemig;

namespace {

std::string xxh128_hex(const std::vector<std::uint8_t>& bytes) {
  XXH128_hash_t d = XXH3_128bits(bytes.data(), bytes.size());
  return fmt::format("{:016x}{:016x}", d.high64, d.low64);
}

}  // namespace

TEST_CASE("livemig file_content_hash: the hash of the bytes, sparse or not", "[livemig][file_hash]") {
  test::TempDir dir;
  const std::size_t size = (9 << 20) + 4321;  // holes, data and a tail across 4 MiB reads
  std::vector<std::uint8_t> content(size, 0);
  auto data = test::pattern(70000, 9);
  std::copy(data.begin(), data.end(), content.begin() + (5 << 20));
  std::string sparse = dir.file("sparse.raw");
  test::make_sparse_file(sparse, size);
  test::write_at(sparse, 5 << 20, data);
  std::string dense = dir.file("dense.raw");
  test::make_sparse_file(dense, 0);
  test::write_at(dense, 0, content);

  auto a = file_content_hash(sparse);
  REQUIRE(a);
  CHECK(*a == xxh128_hex(content));
  CHECK(a->size() == 32);
  CHECK(file_content_hash(dense).value() == *a);
  // Another content (a new version of the same file) has another hash.
  test::write_at(dense, size - 1, {1});
  CHECK(file_content_hash(dense).value() != *a);
  test::make_sparse_file(dir.file("empty"), 0);
  CHECK(file_content_hash(dir.file("empty")).value() == xxh128_hex({}));

  auto missing = file_content_hash(dir.file("nope"));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Errc::not_found);
  auto d = file_content_hash(dir.path());
  REQUIRE_FALSE(d);
}
