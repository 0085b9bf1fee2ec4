#include <catch2/catch.hpp>

#include "utsushi/guest/network_address.h"

using namespace utsushi::guest;

namespace {

AddressConfig fixed(std::string address, std::string gateway = {}, std::vector<std::string> dns = {}) {
  AddressConfig c;
  c.dhcp = false;
  c.address = std::move(address);
  c.gateway = std::move(gateway);
  c.dns = std::move(dns);
  return c;
}

}  // namespace

TEST_CASE("split_cidr and netmask_of", "[guest][address]") {
  std::string a;
  int p = 0;
  REQUIRE(split_cidr("10.0.0.10/24", a, p));
  CHECK(a == "10.0.0.10");
  CHECK(p == 24);
  CHECK_FALSE(split_cidr("10.0.0.10", a, p));
  CHECK_FALSE(split_cidr("10.0.0.300/24", a, p));
  CHECK_FALSE(split_cidr("10.0.0.1/33", a, p));
  CHECK_FALSE(split_cidr("fd00::1/64", a, p));
  CHECK(netmask_of(24) == "255.255.255.0");
  CHECK(netmask_of(20) == "255.255.240.0");
  CHECK(netmask_of(0) == "0.0.0.0");
}

TEST_CASE("networkd: DHCP becomes a static address, the golden's address, [Address] and [Route] go",
          "[guest][address]") {
  const std::string dhcp = "# any NIC\n[Match]\nName=en*\n\n[Network]\nDHCP=ipv4\n\n[DHCPv4]\nClientIdentifier=mac\n";
  CHECK(networkd_sets_address(dhcp));
  Edited e = set_address_networkd(dhcp, fixed("10.0.0.10/24", "10.0.0.1", {"10.0.0.2", "10.0.0.3"}));
  CHECK(e.text ==
        "# any NIC\n[Match]\nName=en*\n\n[Network]\nAddress=10.0.0.10/24\nGateway=10.0.0.1\nDNS=10.0.0.2\nDNS=10.0.0.3\n"
        "\n[DHCPv4]\nClientIdentifier=mac\n");
  CHECK(e.changed());
  const std::string fixed_in = "[Match]\nName=eth0\n\n[Network]\nAddress=10.0.2.56/24\nGateway=10.0.2.2\n\n"
                               "[Address]\nAddress=192.168.9.9/24\n\n[Route]\nGateway=192.168.9.1\n";
  e = set_address_networkd(fixed_in, AddressConfig{});
  CHECK(e.text == "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n\n");
  // Already as wanted: unchanged, no edits.
  Edited again = set_address_networkd(e.text, AddressConfig{});
  CHECK(again.text == e.text);
  CHECK_FALSE(again.changed());
  CHECK_FALSE(networkd_sets_address("[Match]\nName=lo\n[Network]\nAddress=127.0.0.2/8\n"));
  CHECK_FALSE(networkd_sets_address("[Match]\nName=en*\n[Network]\nDNS=1.1.1.1\n"));
  CHECK(networkd_address_file("52:54:00:aa:bb:cc", fixed("10.0.0.9/24")).find("MACAddress=52:54:00:aa:bb:cc\n") !=
        std::string::npos);
}

TEST_CASE("ifupdown: the interface's stanza changes method and options, other stanzas stay", "[guest][address]") {
  const std::string in =
      "source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n\n"
      "allow-hotplug ens3\niface ens3 inet static\n    address 10.0.2.50\n    netmask 255.255.255.0\n"
      "    gateway 10.0.2.2\n    mtu 9000\n\nauto ens4\niface ens4 inet dhcp\n";
  CHECK(ifupdown_address_interfaces(in) == std::vector<std::string>{"ens3", "ens4"});
  Edited e = set_address_ifupdown(in, "ens3", fixed("10.0.0.10/24", "10.0.0.1", {"10.0.0.2"}));
  CHECK(e.text ==
        "source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n\n"
        "allow-hotplug ens3\niface ens3 inet static\n    address 10.0.0.10/24\n    gateway 10.0.0.1\n"
        "    dns-nameservers 10.0.0.2\n    mtu 9000\n\nauto ens4\niface ens4 inet dhcp\n");
  e = set_address_ifupdown(in, "ens3", AddressConfig{});
  CHECK(e.text ==
        "source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n\n"
        "allow-hotplug ens3\niface ens3 inet dhcp\n    mtu 9000\n\nauto ens4\niface ens4 inet dhcp\n");
  CHECK(set_address_ifupdown(in, "eth9", AddressConfig{}).text == in);
}

TEST_CASE("NetworkManager keyfile: [ipv4] method, address and dns", "[guest][address]") {
  const std::string in = "[connection]\nid=Wired\nuuid=0b3c\ntype=ethernet\n\n[ipv4]\nmethod=auto\ndns-search=x\n\n"
                         "[ipv6]\nmethod=auto\n";
  CHECK(nm_keyfile_is_ethernet(in));
  CHECK_FALSE(nm_keyfile_is_ethernet("[connection]\ntype=wifi\n"));
  Edited e = set_address_nm_keyfile(in, fixed("10.0.0.10/24", "10.0.0.1", {"10.0.0.2", "10.0.0.3"}));
  CHECK(e.text == "[connection]\nid=Wired\nuuid=0b3c\ntype=ethernet\n\n[ipv4]\nmethod=manual\n"
                  "address1=10.0.0.10/24,10.0.0.1\ndns=10.0.0.2;10.0.0.3;\ndns-search=x\n\n[ipv6]\nmethod=auto\n");
  CHECK(set_address_nm_keyfile("[connection]\ntype=ethernet\n", AddressConfig{}).text ==
        "[connection]\ntype=ethernet\n\n[ipv4]\nmethod=auto\n");
}

TEST_CASE("netplan: an ethernets entry's addressing keys replaced, nested values included", "[guest][address]") {
  const std::string in =
      "network:\n  version: 2\n  ethernets:\n    ens3:\n      dhcp4: true\n      match:\n        macaddress: "
      "\"52:54:00:00:00:01\"\n      nameservers:\n        addresses: [1.1.1.1]\n    ens4:\n      dhcp4: true\n";
  CHECK(netplan_ethernet_ids(in) == std::vector<std::string>{"ens3", "ens4"});
  Edited e = set_address_netplan(in, "ens3", fixed("10.0.0.10/24", "10.0.0.1", {"10.0.0.2"}));
  CHECK(e.text ==
        "network:\n  version: 2\n  ethernets:\n    ens3:\n      dhcp4: false\n      addresses: [10.0.0.10/24]\n"
        "      routes:\n        - to: 0.0.0.0/0\n          via: 10.0.0.1\n      nameservers:\n        addresses: "
        "[10.0.0.2]\n      match:\n        macaddress: \"52:54:00:00:00:01\"\n    ens4:\n      dhcp4: true\n");
  CHECK(set_address_netplan(in, "eno9", AddressConfig{}).text == in);
}
