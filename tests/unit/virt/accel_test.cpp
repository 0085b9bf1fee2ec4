#include <stdlib.h>

#include <catch2/catch.hpp>

#include "utsushi/virt/accel.h"

using namespace utsushi;
using namespace utsushi::virt;

TEST_CASE("virt::accel: an explicit choice wins without probing", "[accel]") {
  auto c = choose_accel(Accel::tcg);
  REQUIRE(c);
  CHECK(c->accel == Accel::tcg);
  CHECK(c->reason == "chosen on the command line");
}

TEST_CASE("virt::accel: UTSUSHI_ACCEL forces, and a bad value is an error", "[accel]") {
  ::setenv("UTSUSHI_ACCEL", "kvm", 1);
  auto c = choose_accel();
  REQUIRE(c);
  CHECK(c->accel == Accel::kvm);
  ::setenv("UTSUSHI_ACCEL", "xen", 1);
  auto bad = choose_accel();
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message().find("xen") != std::string::npos);
  ::unsetenv("UTSUSHI_ACCEL");
}

TEST_CASE("virt::accel: accelerator names parse both ways", "[accel]") {
  CHECK(parse_accel("kvm").value() == Accel::kvm);
  CHECK(parse_accel("tcg").value() == Accel::tcg);
  CHECK(accel_name(Accel::tcg) == "tcg");
}

TEST_CASE("virt::accel: the boot check sees a TCG guest reach root mount", "[accel][slow]") {
  auto booted = probe_guest_boots(Accel::tcg, 60);
  REQUIRE(booted);
  CHECK(*booted);
}
