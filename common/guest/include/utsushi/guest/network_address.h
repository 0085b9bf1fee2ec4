#pragma once
// Pure rewriting of how a guest's NIC gets its IPv4 address, in each network
// configuration system: a static address (with gateway and DNS servers) or
// DHCP. clone gives every clone its own address in the system its golden
// uses, editing the golden's own file in place so nothing of the golden's
// address stays behind:
//
//   systemd-networkd   [Network] DHCP=/Address=/Gateway=/DNS= replaced,
//                      [Address] and [Route] sections dropped
//   ifupdown           the interface's "iface NAME inet METHOD" stanza: method
//                      and address/netmask/gateway/dns-nameservers options
//   NetworkManager     [ipv4] method, address1, dns (keyfile)
//   netplan            an ethernets entry's dhcp4, addresses, routes,
//                      gateway4, nameservers
//
// Every function keeps comments and untouched lines byte for byte and lists
// its edits in words (config_edit.h's Edited).

#include <string>
#include <string_view>
#include <vector>

#include "utsushi/guest/config_edit.h"

namespace utsushi::guest {

struct AddressConfig {
  bool dhcp = true;
  std::string address;           // static: "10.0.0.10/24"
  std::string gateway;           // static: "" for none
  std::vector<std::string> dns;  // static: name servers, may be empty
  bool operator==(const AddressConfig&) const = default;
};

// "10.0.0.10/24" -> "10.0.0.10" and 24; false when not IPv4 CIDR.
bool split_cidr(std::string_view cidr, std::string& address, int& prefix);
// 24 -> "255.255.255.0".
std::string netmask_of(int prefix);

// systemd-networkd: whether a .network file gives its NIC an address
// (DHCP=, Address= or an [Address] section) and does not match only "lo".
bool networkd_sets_address(std::string_view text);
Edited set_address_networkd(std::string_view text, const AddressConfig& config);
// A new .network file configuring the NIC with `mac` (for a guest without one).
std::string networkd_address_file(std::string_view mac, const AddressConfig& config);

// ifupdown: the interfaces that have an "iface NAME inet dhcp|static"
// stanza (lo and manual/loopback stanzas excluded), in file order.
std::vector<std::string> ifupdown_address_interfaces(std::string_view text);
Edited set_address_ifupdown(std::string_view text, std::string_view iface, const AddressConfig& config);

// NetworkManager keyfiles: whether the connection is an Ethernet one.
bool nm_keyfile_is_ethernet(std::string_view text);
Edited set_address_nm_keyfile(std::string_view text, const AddressConfig& config);

// netplan: the ids of the ethernets entries, in file order.
std::vector<std::string> netplan_ethernet_ids(std::string_view text);
Edited set_address_netplan(std::string_view text, std::string_view id, const AddressConfig& config);

}  // namespace utsushi::guest
