#include <catch2/catch.hpp>

#include "utsushi/common/error.h"

using namespace utsushi;

namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) {
    return fail(Errc::invalid_argument, "not positive: " + std::to_string(v));
  }
  return v;
}

Result<int> doubled(int v) {
  int x = UTSUSHI_TRY(parse_positive(v));
  return 2 * x;
}

Result<int> doubled_with_context(int v) {
  int x = UTSUSHI_TRY_CTX(parse_positive(v), "doubling");
  return 2 * x;
}

}  // namespace

TEST_CASE("error: UTSUSHI_TRY propagates errors and unwraps values", "[error]") {
  REQUIRE(doubled(21).value() == 42);
  auto r = doubled(-1);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::invalid_argument);
  CHECK(r.error().message() == "not positive: -1");
}

TEST_CASE("error: UTSUSHI_TRY_CTX prefixes context", "[error]") {
  auto r = doubled_with_context(0);
  REQUIRE_FALSE(r);
  CHECK(r.error().message() == "doubling: not positive: 0");
}

TEST_CASE("error: errno maps to codes with the strerror text", "[error]") {
  CHECK(errno_error(ENOSPC, "write x").code() == Errc::no_space);
  CHECK(errno_error(ENOENT, "open x").code() == Errc::not_found);
  CHECK(errno_error(EBUSY, "open x").code() == Errc::failed_precondition);
  CHECK(errno_error(EIO, "read x").code() == Errc::io_error);
  Error e = errno_error(ENOENT, "cannot open 'a'");
  CHECK(e.message() == "cannot open 'a': No such file or directory");
  CHECK(e.sys_errno() == ENOENT);
}

TEST_CASE("error: every code has a name", "[error]") {
  for (int c = 0; c <= static_cast<int>(Errc::internal); ++c) {
    CHECK_FALSE(errc_name(static_cast<Errc>(c)).empty());
    CHECK(errc_name(static_cast<Errc>(c)) != "unknown error");
  }
}
