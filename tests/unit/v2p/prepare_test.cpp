// The boot preparation's list of operations for each choice of options, and
// the NIC choices a restored system cannot take.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "utsushi/v2p/prepare.h"

using namespace utsushi;
using namespace utsushi::v2p;

namespace {

guest::GuestOs os_with_nics(std::vector<std::string> names) {
  guest::GuestOs os;
  os.network.push_back({guest::NetworkSystem::ifupdown, "/etc/network/interfaces", std::move(names)});
  return os;
}

std::vector<std::string> names(const guest::OperationList& ops) {
  std::vector<std::string> out;
  for (const auto& op : ops) {
    out.emplace_back(op->name());
  }
  return out;
}

}  // namespace

// The NIC operations precede the initramfs, which holds the .link files they write.
TEST_CASE("v2p::preparation_operations: the bare-metal list in order", "[v2p][prepare]") {
  PrepareOptions o;
  auto ops = preparation_operations(o, os_with_nics({"ens3"}));
  REQUIRE(ops);
  CHECK(names(*ops) == std::vector<std::string>{"stale-caches", "device-names", "initramfs", "boot-loader",
                                                "boot-fallback", "serial-console", "vm-services"});

  o.boot = BootChoice::none;
  o.nic = {NicChoice::Kind::mac, "52:54:00:12:34:56"};
  ops = preparation_operations(o, os_with_nics({"ens3"}));
  REQUIRE(ops);
  CHECK(names(*ops) == std::vector<std::string>{"stale-caches", "device-names", "nic-names", "initramfs",
                                                "boot-loader", "serial-console", "vm-services"});

  o.nic = {NicChoice::Kind::dhcp, ""};
  ops = preparation_operations(o, os_with_nics({"ens3", "ens4"}));
  REQUIRE(ops);
  CHECK(names(*ops) == std::vector<std::string>{"stale-caches", "device-names", "nic-dhcp", "initramfs",
                                                "boot-loader", "serial-console", "vm-services"});
}

TEST_CASE("v2p::preparation_operations: --nic-mac/--nic-name need exactly one configured NIC", "[v2p][prepare]") {
  PrepareOptions o;
  o.nic = {NicChoice::Kind::name, "eno1"};
  auto none = preparation_operations(o, guest::GuestOs{});
  REQUIRE_FALSE(none);
  CHECK(none.error().code() == Errc::failed_precondition);
  auto two = preparation_operations(o, os_with_nics({"ens3", "ens4"}));
  REQUIRE_FALSE(two);
  CHECK(two.error().code() == Errc::not_supported);
  CHECK(two.error().message().find("--nic-dhcp") != std::string::npos);
}
