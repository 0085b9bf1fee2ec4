#pragma once
// Pure reading and rewriting of the network configuration systems that bind
// an address to a NIC *name*: ifupdown (/etc/network/interfaces),
// systemd-networkd (.network [Match] Name=, .link [Link] Name=),
// NetworkManager keyfiles (interface-name=), netplan (ethernets ids,
// match: name, set-name) and udev persistent-net rules (NAME=).
//
// A moved machine's NIC gets another name (ens3 -> enp1s0, eth0 from a udev
// rule keyed to a driver). Two remedies, both here:
//   pin     keep the old name: a systemd .link file (or a udev rule where udev
//           predates .link files) names the NIC with the given MAC; matches
//           on the old driver or bus path, which the new NIC fails, are
//           dropped or replaced by the MAC;
//   rebind  rename the old name to the new one in every configuration.

#include <string>
#include <string_view>
#include <vector>

#include "utsushi/guest/guest_os.h"

namespace utsushi::guest {

// The literal interface names a file binds to (no globs, no "lo"), per system.
std::vector<std::string> interfaces_ifupdown(std::string_view text);
std::vector<std::string> interfaces_networkd(std::string_view text);  // .network and .link
std::vector<std::string> interfaces_nm_keyfile(std::string_view text);
std::vector<std::string> interfaces_netplan(std::string_view text);
std::vector<std::string> interfaces_udev_rules(std::string_view text);
std::vector<std::string> interfaces_of(NetworkSystem system, std::string_view text);

// Renames interface `from` to `to` (whole names only; "eth0.100" follows as
// "NEW.100"). Returns the text unchanged when `from` does not occur.
std::string rebind(NetworkSystem system, std::string_view text, std::string_view from, std::string_view to);

// For the pin remedy: matches that a different NIC with the same name and MAC
// would fail, fixed. networkd: Driver= and Path= dropped from [Match] of files
// that match by name; netplan: "driver:" under a match replaced by
// "macaddress: MAC"; udev rules: DRIVERS=="x" dropped. `name` and `mac` are
// the pinned pair.
std::string drop_hardware_matches(NetworkSystem system, std::string_view text, std::string_view name,
                                  std::string_view mac);

// A systemd .link file giving the NIC with `mac` the name `name` (matching
// only kernel-named devices, so bridges and VLANs sharing the MAC are left alone).
std::string pin_link_file(std::string_view name, std::string_view mac);
// The same as a udev rule line, for udev without .link support.
std::string pin_udev_rule(std::string_view name, std::string_view mac);

// "52:54:00:AB:cd:01" -> "52:54:00:ab:cd:01"; false when not a MAC.
bool normalise_mac(std::string& mac);

}  // namespace utsushi::guest
