#include <catch2/catch.hpp>

#include "utsushi/common/cli.h"

using namespace utsushi;

TEST_CASE("cli: error codes map to the documented exit statuses", "[cli]") {
  CHECK(cli::exit_code_for(Errc::invalid_argument) == 2);
  CHECK(cli::exit_code_for(Errc::not_supported) == 3);
  CHECK(cli::exit_code_for(Errc::failed_precondition) == 4);
  CHECK(cli::exit_code_for(Errc::cancelled) == 130);
  CHECK(cli::exit_code_for(Errc::io_error) == 1);
  CHECK(cli::exit_code_for(Errc::corruption) == 1);
}

TEST_CASE("cli: value_or_throw passes values and throws the error", "[cli]") {
  CHECK(cli::value_or_throw(Result<int>(5)) == 5);
  try {
    cli::value_or_throw(Result<int>(std::unexpected(Error(Errc::not_found, "gone"))));
    FAIL("no exception");
  } catch (const cli::Failure& f) {
    CHECK(f.error().code() == Errc::not_found);
    CHECK(std::string(f.what()) == "gone");
  }
}
