#include <catch2/catch.hpp>

#include "utsushi/common/endian.h"

using namespace utsushi;

TEST_CASE("endian: loads read the documented byte order at any alignment", "[endian]") {
  const std::uint8_t bytes[] = {0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  const std::uint8_t* p = bytes + 1;  // deliberately unaligned
  CHECK(load_le16(p) == 0x0201);
  CHECK(load_be16(p) == 0x0102);
  CHECK(load_le32(p) == 0x04030201u);
  CHECK(load_be32(p) == 0x01020304u);
  CHECK(load_le64(p) == 0x0807060504030201ull);
  CHECK(load_be64(p) == 0x0102030405060708ull);
}

TEST_CASE("endian: stores round-trip through loads", "[endian]") {
  std::uint8_t buf[9] = {};
  store_be64(buf + 1, 0x1122334455667788ull);
  CHECK(buf[1] == 0x11);
  CHECK(buf[8] == 0x88);
  CHECK(load_be64(buf + 1) == 0x1122334455667788ull);
  store_le32(buf, 0xdeadbeef);
  CHECK(buf[0] == 0xef);
  CHECK(load_le32(buf) == 0xdeadbeef);
  store_le16(buf, 0xabcd);
  store_be16(buf + 2, 0xabcd);
  CHECK(load_le16(buf) == load_be16(buf + 2));
  store_le64(buf, 1);
  CHECK(buf[0] == 1);
  store_be32(buf, 1);
  CHECK(buf[3] == 1);
}
