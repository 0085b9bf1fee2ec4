#include <stdlib.h>

#include <catch2/catch.hpp>

#include "utsushi/common/virt_probe.h"

using namespace utsushi;

TEST_CASE("virt_probe: an explicit choice wins without probing", "[virt_probe]") {
  auto c = choose_accel(Accel::tcg);
  REQUIRE(c);
  CHECK(c->accel == Accel::tcg);
  CHECK(c->reason == "chosen on the command line");
}

TEST_CASE("virt_probe: UTSUSHI_ACCEL forces, and a bad value is an error", "[virt_probe]") {
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

TEST_CASE("virt_probe: accelerator names parse both ways", "[virt_probe]") {
  CHECK(parse_accel("kvm").value() == Accel::kvm);
  CHECK(parse_accel("tcg").value() == Accel::tcg);
  CHECK(accel_name(Accel::tcg) == "tcg");
}

TEST_CASE("virt_probe: the boot check sees a TCG guest reach root mount", "[virt_probe][slow]") {
  auto booted = probe_guest_boots(Accel::tcg, 60);
  REQUIRE(booted);
  CHECK(*booted);
}
