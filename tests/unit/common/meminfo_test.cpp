#include <catch2/catch.hpp>

#include "utsushi/common/meminfo.h"

TEST_CASE("meminfo_bytes reads a field of /proc/meminfo in bytes", "[common][meminfo]") {
  auto total = utsushi::meminfo_bytes("MemTotal");
  auto available = utsushi::meminfo_bytes("MemAvailable");
  REQUIRE(total);
  REQUIRE(available);
  CHECK(*total > (64u << 20));
  CHECK(*total % 1024 == 0);
  CHECK(*available <= *total);
  CHECK_FALSE(utsushi::meminfo_bytes("Mem"));  // a prefix of a field is not the field
  CHECK_FALSE(utsushi::meminfo_bytes("NoSuchField"));
}
