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

TEST_CASE("cli: --accel parses kvm and tcg and rejects anything else", "[cli]") {
  CLI::App app;
  std::optional<Accel> accel;
  cli::add_accel_option(app, accel);
  app.parse(std::vector<std::string>{"tcg", "--accel"});  // CLI11 takes reversed argv
  REQUIRE(accel);
  CHECK(*accel == Accel::tcg);
  CLI::App bad;
  std::optional<Accel> none;
  cli::add_accel_option(bad, none);
  CHECK_THROWS_AS(bad.parse(std::vector<std::string>{"xen", "--accel"}), CLI::ValidationError);
  CHECK_FALSE(none);
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
