#include "utsushi/virt/accel_option.h"

#include <catch2/catch.hpp>

using namespace utsushi::virt;

TEST_CASE("virt::cli::add_accel_option parses kvm and tcg and rejects anything else", "[accel]") {
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
