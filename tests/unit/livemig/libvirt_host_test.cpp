#include "utsushi/livemig/libvirt_host.h"

#include <catch2/catch.hpp>

using namespace utsushi;
using namespace utsushi::livemig;

// libvirt's test driver runs in process: no daemon needed. (The shared event
// loop's start and stop are tested with virt::Connection, tests/unit/virt.)
TEST_CASE("livemig::LibvirtHost lists active guests and says why it skips them", "[livemig][libvirt]") {
  auto host = LibvirtHost::open("test:///default");
  REQUIRE(host);
  auto guests = (*host)->list_guests();
  REQUIRE(guests);
  // The test driver's preset domain "test" runs, but is no QEMU domain.
  REQUIRE(guests->size() == 1);
  CHECK((*guests)[0].name == "test");
  CHECK((*guests)[0].state == "running");
  CHECK((*guests)[0].skip_reason == "not a QEMU domain (libvirt driver TEST)");
  auto mon = (*host)->monitor("nobody");
  REQUIRE_FALSE(mon);
  CHECK(mon.error().code() == Errc::not_found);
}
