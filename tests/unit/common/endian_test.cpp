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

TEST_CASE("endian: Cursor reads in both orders and refuses to read past the end", "[endian]") {
  Bytes b;
  put_be16(b, 0x0102);
  put_le32(b, 0x03040506);
  put_be64(b, 7);
  put_varint(b, 300);
  put_string(b, "ab");
  Cursor c(b, "test record");
  CHECK(c.be16().value() == 0x0102);
  CHECK(c.le32().value() == 0x03040506u);
  CHECK(c.be64().value() == 7);
  CHECK(c.varint().value() == 300);
  CHECK(c.remaining() == 2);
  auto over = c.be32();
  REQUIRE_FALSE(over);
  CHECK(over.error().code() == Errc::corruption);
  CHECK_THAT(over.error().message(), Catch::Matchers::Contains("test record"));
  CHECK(c.remaining() == 2);  // a failed read consumes nothing
  CHECK(as_text(c.take(2).value()) == "ab");
  CHECK(c.done());
  CHECK(has_bytes_at(b, b.size() - 2, "ab"));
  CHECK_FALSE(has_bytes_at(b, b.size() - 1, "ab"));
  CHECK_FALSE(has_bytes_at(b, b.size() + 5, ""));
  CHECK(be16_at(b, 0) == 0x0102);
  CHECK(le32_at(b, 2) == 0x03040506u);
}
