#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "test_support.h"
#include "utsushi/common/auth.h"

using namespace utsushi;

namespace {

std::string token_file(const test::TempDir& dir, const std::string& text, mode_t mode) {
  std::string path = dir.file("token");
  std::ofstream(path, std::ios::trunc) << text;
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

std::string hex(const auth::Mac& m) {
  std::string s;
  for (auto b : m) {
    char h[3];
    std::snprintf(h, sizeof h, "%02x", b);
    s += h;
  }
  return s;
}

}  // namespace

TEST_CASE("auth::read_token_file trims white space and accepts an owner-only file", "[auth]") {
  test::TempDir dir;
  auto t = auth::read_token_file(token_file(dir, "  0123456789abcdef \n", 0600));
  REQUIRE(t);
  CHECK(*t == "0123456789abcdef");
  CHECK(auth::read_token_file(token_file(dir, "0123456789abcdef", 0400)).value() == "0123456789abcdef");
}

TEST_CASE("auth::read_token_file refuses a token shorter than 16 bytes", "[auth]") {
  test::TempDir dir;
  for (std::string text : {"", " \n\t", "x", "0123456789abcde\n"}) {
    auto t = auth::read_token_file(token_file(dir, text, 0600));
    REQUIRE_FALSE(t);
    CHECK(t.error().code() == Errc::invalid_argument);
    CHECK(t.error().message().find(dir.file("token")) != std::string::npos);
  }
  auto t = auth::read_token_file(token_file(dir, "0123456789abcde", 0600));
  CHECK(t.error().message().find("at least 16") != std::string::npos);
}

TEST_CASE("auth::read_token_file refuses a file readable or writable by group or others", "[auth]") {
  test::TempDir dir;
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602, 0660}) {
    std::string path = token_file(dir, "0123456789abcdef-long-enough", mode);
    auto t = auth::read_token_file(path);
    REQUIRE_FALSE(t);
    CHECK(t.error().code() == Errc::permission_denied);
    CHECK(t.error().message().find(path) != std::string::npos);
    CHECK(t.error().message().find("chmod 600") != std::string::npos);
  }
}

TEST_CASE("auth::read_token_file names a missing file", "[auth]") {
  test::TempDir dir;
  auto t = auth::read_token_file(dir.file("absent"));
  REQUIRE_FALSE(t);
  CHECK(t.error().code() == Errc::not_found);
  CHECK(t.error().message().find(dir.file("absent")) != std::string::npos);
}

TEST_CASE("auth::check_token", "[auth]") {
  CHECK(auth::check_token("0123456789abcdef", "here"));
  auto r = auth::check_token("short", "here");
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::invalid_argument);
  CHECK(r.error().message().starts_with("here:"));
  CHECK_FALSE(auth::check_token("", "here"));
}

TEST_CASE("auth::hmac_sha256 matches RFC 4231 and joins its parts", "[auth]") {
  // RFC 4231 test case 1: key = 20 x 0x0b, data = "Hi There".
  std::string key1(20, '\x0b');
  CHECK(hex(auth::hmac_sha256(key1, {auth::as_bytes("Hi There")})) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2: key = "Jefe", data = "what do ya want for nothing?", given in three parts.
  CHECK(hex(auth::hmac_sha256("Jefe", {auth::as_bytes("what do ya "), auth::as_bytes("want for "),
                                       auth::as_bytes("nothing?")})) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a 131-byte key (longer than the block size) is hashed first.
  std::string key6(131, '\xaa');
  CHECK(hex(auth::hmac_sha256(key6, {auth::as_bytes("Test Using Larger Than Block-Size Key - Hash Key First")})) ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST_CASE("auth::random_nonce and random_token differ every time", "[auth]") {
  auto a = auth::random_nonce();
  auto b = auth::random_nonce();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a != *b);
  auto t = auth::random_token();
  REQUIRE(t);
  CHECK(t->size() == 64);
  CHECK(t->find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(auth::check_token(*t, "random"));
  CHECK(*t != auth::random_token().value());
}

TEST_CASE("auth::equal_constant_time", "[auth]") {
  auth::Mac a{};
  a[5] = 7;
  auth::Mac b = a;
  CHECK(auth::equal_constant_time(a, b));
  b[31] ^= 1;
  CHECK_FALSE(auth::equal_constant_time(a, b));
  CHECK_FALSE(auth::equal_constant_time(a, std::span<const std::uint8_t>(a).first(31)));
  CHECK(auth::equal_constant_time({}, {}));
}
