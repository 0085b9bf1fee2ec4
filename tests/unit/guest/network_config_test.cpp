#include <catch2/catch.hpp>

#include "utsushi/guest/network_config.h"

using namespace utsushi::guest;
using Names = std::vector<std::string>;

TEST_CASE("ifupdown: names, bridges and VLANs", "[guest][network]") {
  const std::string in =
      "source /etc/network/interfaces.d/*\n"
      "auto lo\niface lo inet loopback\n"
      "# the on-board NIC\n"
      "allow-hotplug ens3\n"
      "iface ens3 inet static\n\taddress 10.0.2.50/24\n\tgateway 10.0.2.2\n"
      "auto br0\niface br0 inet dhcp\n\tbridge_ports eno1 ens3.100\n";
  CHECK(interfaces_ifupdown(in) == Names{"ens3", "eno1"});
  std::string out = rebind(NetworkSystem::ifupdown, in, "ens3", "enp1s0");
  CHECK(out ==
        "source /etc/network/interfaces.d/*\n"
        "auto lo\niface lo inet loopback\n"
        "# the on-board NIC\n"
        "allow-hotplug enp1s0\n"
        "iface enp1s0 inet static\n\taddress 10.0.2.50/24\n\tgateway 10.0.2.2\n"
        "auto br0\niface br0 inet dhcp\n\tbridge_ports eno1 enp1s0.100\n");
  CHECK(rebind(NetworkSystem::ifupdown, "iface ens33 inet dhcp\n", "ens3", "x") == "iface ens33 inet dhcp\n");
  CHECK(drop_hardware_matches(NetworkSystem::ifupdown, in, "ens3", "52:54:00:00:00:01") == in);
}

TEST_CASE("systemd-networkd: Match Name, globs ignored, driver matches dropped", "[guest][network]") {
  const std::string in = "[Match]\nName=enp0s25 eth*\nDriver=e1000e\n\n[Network]\nAddress=10.0.0.5/24\n";
  CHECK(interfaces_networkd(in) == Names{"enp0s25"});
  CHECK(interfaces_networkd("[Match]\nName=en*\n").empty());
  CHECK(interfaces_networkd("[Match]\nPath=pci-0000:00:19.0\n[Link]\nName=lan0\n") == Names{"lan0"});
  CHECK(rebind(NetworkSystem::networkd, in, "enp0s25", "enp1s0") ==
        "[Match]\nName=enp1s0 eth*\nDriver=e1000e\n\n[Network]\nAddress=10.0.0.5/24\n");
  CHECK(drop_hardware_matches(NetworkSystem::networkd, in, "enp0s25", "52:54:00:00:00:01") ==
        "[Match]\nName=enp0s25 eth*\n\n[Network]\nAddress=10.0.0.5/24\n");
  // A file that does not match the pinned name is left alone.
  CHECK(drop_hardware_matches(NetworkSystem::networkd, in, "eno1", "52:54:00:00:00:01") == in);
}

TEST_CASE("NetworkManager keyfile: interface-name", "[guest][network]") {
  const std::string in =
      "[connection]\nid=Wired\nuuid=1b6c\ntype=ethernet\ninterface-name=enp0s31f6\n\n[ipv4]\nmethod=manual\n"
      "address1=192.168.1.10/24\n";
  CHECK(interfaces_nm_keyfile(in) == Names{"enp0s31f6"});
  std::string out = rebind(NetworkSystem::networkmanager, in, "enp0s31f6", "enp1s0");
  CHECK(out.find("interface-name=enp1s0\n") != std::string::npos);
  CHECK(interfaces_nm_keyfile(out) == Names{"enp1s0"});
  CHECK(interfaces_nm_keyfile("[connection]\nid=x\n[ethernet]\nmac-address=52:54:00:00:00:01\n").empty());
}

TEST_CASE("netplan: ids, match name, set-name, driver match becomes the MAC", "[guest][network]") {
  const std::string in =
      "network:\n"
      "  version: 2\n"
      "  ethernets:\n"
      "    eno1:\n"
      "      addresses: [10.0.0.5/24]\n"
      "    lan:\n"
      "      match:\n"
      "        driver: e1000e\n"
      "      set-name: lan\n"
      "      dhcp4: true\n"
      "  bridges:\n"
      "    br0:\n"
      "      interfaces: [eno1]\n";
  CHECK(interfaces_netplan(in) == Names{"eno1", "lan"});
  std::string out = rebind(NetworkSystem::netplan, in, "eno1", "enp1s0");
  CHECK(out.find("    enp1s0:\n") != std::string::npos);
  CHECK(out.find("interfaces: [enp1s0]") != std::string::npos);
  std::string pinned = drop_hardware_matches(NetworkSystem::netplan, in, "lan", "52:54:00:12:34:56");
  CHECK(pinned.find("        macaddress: \"52:54:00:12:34:56\"\n") != std::string::npos);
  CHECK(pinned.find("driver:") == std::string::npos);
}

TEST_CASE("udev persistent-net rules: NAME, driver constraints", "[guest][network]") {
  const std::string in =
      "# PCI device 0x8086:0x10d3 (e1000e)\n"
      "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"e1000e\", ATTR{address}==\"00:1b:21:aa:bb:cc\", "
      "ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"eth0\"\n";
  CHECK(interfaces_udev_rules(in) == Names{"eth0"});
  std::string out = drop_hardware_matches(NetworkSystem::udev_rules, in, "eth0", "00:1b:21:aa:bb:cc");
  CHECK(out ==
        "# PCI device 0x8086:0x10d3 (e1000e)\n"
        "SUBSYSTEM==\"net\", ACTION==\"add\", ATTR{address}==\"00:1b:21:aa:bb:cc\", ATTR{type}==\"1\", "
        "KERNEL==\"eth*\", NAME=\"eth0\"\n");
  CHECK(rebind(NetworkSystem::udev_rules, in, "eth0", "ens3").find("NAME=\"ens3\"") != std::string::npos);
}

TEST_CASE("pin files and MAC normalisation", "[guest][network]") {
  std::string link = pin_link_file("ens3", "52:54:00:75:74:01");
  CHECK(link.find("[Match]\nMACAddress=52:54:00:75:74:01\nOriginalName=eth*\n") != std::string::npos);
  CHECK(link.find("[Link]\nName=ens3\n") != std::string::npos);
  CHECK(interfaces_networkd(link) == Names{"ens3"});
  CHECK(interfaces_udev_rules(pin_udev_rule("ens3", "52:54:00:75:74:01")) == Names{"ens3"});
  std::string mac = "52-54-00-AB-cd-01";
  CHECK(normalise_mac(mac));
  CHECK(mac == "52:54:00:ab:cd:01");
  std::string bad = "52:54:00:ab:cd";
  CHECK_FALSE(normalise_mac(bad));
}
