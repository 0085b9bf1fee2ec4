#include <catch2/catch.hpp>
#include <vector>

#include "utsushi/common/zero.h"

using namespace utsushi;

TEST_CASE("zero: all-zero buffers of every size and alignment", "[zero]") {
  std::vector<std::uint8_t> buf(4096 + 64, 0);
  for (std::size_t offset = 0; offset < 9; ++offset) {
    for (std::size_t size : {0u, 1u, 7u, 8u, 63u, 64u, 65u, 511u, 4096u}) {
      CHECK(is_all_zero(buf.data() + offset, size));
    }
  }
}

TEST_CASE("zero: a single non-zero byte anywhere is found", "[zero]") {
  const std::size_t n = 1000;
  std::vector<std::uint8_t> buf(n + 16, 0);
  for (std::size_t offset = 0; offset < 3; ++offset) {
    for (std::size_t i = 0; i < n; ++i) {
      buf[offset + i] = 0x80;
      CHECK_FALSE(is_all_zero(buf.data() + offset, n));
      buf[offset + i] = 0;
    }
    CHECK(is_all_zero(buf.data() + offset, n));
  }
}

TEST_CASE("zero: bytes outside the range are ignored", "[zero]") {
  std::vector<std::uint8_t> buf(256, 0);
  buf[0] = 1;
  buf[255] = 1;
  CHECK(is_all_zero(buf.data() + 1, 254));
  CHECK_FALSE(is_all_zero(buf.data(), 255));
}
