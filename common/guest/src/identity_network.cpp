// udev-persistent-net, net-hwaddr, net-address, nm-connection-uuids,
// dhcp-client-state (identity_ops.h).
#include <fmt/core.h>

#include <array>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "identity_util.h"
#include "utsushi/guest/identity_edit.h"
#include "utsushi/guest/network_address.h"
#include "utsushi/guest/network_config.h"

namespace utsushi::guest::identity {
namespace {

constexpr const char* k_udev_rules = "/etc/udev/rules.d/*persistent-net*.rules";
constexpr const char* k_nm_connections = "/etc/NetworkManager/system-connections/*";
constexpr const char* k_networkd_files = "/etc/systemd/network/*";
constexpr const char* k_netplan_files[] = {"/etc/netplan/*.yaml", "/etc/netplan/*.yml"};
constexpr const char* k_ifupdown_files[] = {"/etc/network/interfaces", "/etc/network/interfaces.d/*"};
constexpr const char* k_ifcfg_files = "/etc/sysconfig/network-scripts/ifcfg-*";

std::string joined(const std::vector<std::string>& edits) { return fmt::format("{}", fmt::join(edits, "; ")); }

// Every regular file the patterns match, in order.
Result<std::vector<std::string>> files(Target& t, std::initializer_list<const char*> patterns) {
  std::vector<std::string_view> globs(patterns.begin(), patterns.end());
  std::vector<std::string> out;
  for (std::string& p : UTSUSHI_TRY(t.session().glob(globs))) {
    if (UTSUSHI_TRY(t.session().is_file(p))) {
      out.push_back(std::move(p));
    }
  }
  return out;
}

Result<std::vector<std::string>> network_files(Target& t) {
  return files(t, {k_networkd_files, k_nm_connections, k_netplan_files[0], k_netplan_files[1], k_ifupdown_files[0],
                   k_ifupdown_files[1], k_ifcfg_files});
}

// old MAC -> new MAC, for the NICs the guest had and the clone has.
Result<std::map<std::string, std::string>> mac_map(Target& t, const IdentityParams& p) {
  std::vector<std::string> old = p.old_macs;
  if (old.empty()) {
    for (const std::string& f : UTSUSHI_TRY(files(t, {k_udev_rules}))) {
      for (std::string& m : macs_in(UTSUSHI_TRY(t.read(f)).value_or(""))) {
        old.push_back(std::move(m));
      }
    }
  }
  if (old.empty()) {
    for (const std::string& f : UTSUSHI_TRY(network_files(t))) {
      for (std::string& m : macs_in(UTSUSHI_TRY(t.read(f)).value_or(""))) {
        if (std::find(old.begin(), old.end(), m) == old.end()) {
          old.push_back(std::move(m));
        }
      }
    }
  }
  std::map<std::string, std::string> map;
  for (std::size_t i = 0; i < std::min(old.size(), p.macs.size()); ++i) {
    std::string from = old[i], to = p.macs[i];
    if (normalise_mac(from) && normalise_mac(to)) {
      map[from] = to;
    }
  }
  return map;
}

Result<void> udev_persistent_net(Target& t, const IdentityParams& p) {
  std::map<std::string, std::string> map = UTSUSHI_TRY(mac_map(t, p));
  for (const std::string& f : UTSUSHI_TRY(files(t, {k_udev_rules}))) {
    if (p.macs.empty()) {
      UTSUSHI_TRY(t.remove(f, "rules for the old NICs' MACs (the new NICs are named by the kernel and udev)"));
      continue;
    }
    std::string text = UTSUSHI_TRY(t.read(f)).value_or("");
    Edited remapped = remap_macs(text, map);
    Edited kept = keep_net_rules(remapped.text, p.macs.size());
    if (remapped.text != text || kept.changed()) {
      std::vector<std::string> edits = remapped.edits;
      edits.insert(edits.end(), kept.edits.begin(), kept.edits.end());
      UTSUSHI_TRY(t.write(f, kept.text, "each NIC keeps its name with its new MAC: " + joined(edits)));
    }
  }
  return {};
}

Result<void> net_hwaddr(Target& t, const IdentityParams& p) {
  std::map<std::string, std::string> map = UTSUSHI_TRY(mac_map(t, p));
  if (map.empty()) {
    return {};
  }
  for (const std::string& f : UTSUSHI_TRY(network_files(t))) {
    std::string text = UTSUSHI_TRY(t.read(f)).value_or("");
    Edited e = remap_macs(text, map);
    if (e.text != text) {
      UTSUSHI_TRY(t.write(f, e.text, joined(e.edits)));
    }
  }
  return {};
}

// Sets the address in the first configuration that gives the first NIC one,
// looking at netplan, NetworkManager, networkd and ifupdown in that order
// (netplan generates the others' files; NetworkManager manages NICs that
// ifupdown leaves alone).
Result<void> net_address(Target& t, const IdentityParams& p) {
  const AddressConfig& c = *p.address;
  auto edit = [&](const std::string& f, auto fn) -> Result<bool> {
    std::string text = UTSUSHI_TRY(t.read(f)).value_or("");
    Edited e = fn(text);
    if (e.changed()) {
      UTSUSHI_TRY(t.write(f, e.text, joined(e.edits)));
    }
    return true;
  };
  for (const std::string& f : UTSUSHI_TRY(files(t, {k_netplan_files[0], k_netplan_files[1]}))) {
    std::vector<std::string> ids = netplan_ethernet_ids(UTSUSHI_TRY(t.read(f)).value_or(""));
    if (!ids.empty()) {
      UTSUSHI_TRY(edit(f, [&](const std::string& text) { return set_address_netplan(text, ids.front(), c); }));
      return {};
    }
  }
  for (const std::string& f : UTSUSHI_TRY(files(t, {k_nm_connections}))) {
    if (nm_keyfile_is_ethernet(UTSUSHI_TRY(t.read(f)).value_or(""))) {
      UTSUSHI_TRY(edit(f, [&](const std::string& text) { return set_address_nm_keyfile(text, c); }));
      return {};
    }
  }
  for (const std::string& f : UTSUSHI_TRY(files(t, {k_networkd_files}))) {
    if (f.ends_with(".network") && networkd_sets_address(UTSUSHI_TRY(t.read(f)).value_or(""))) {
      UTSUSHI_TRY(edit(f, [&](const std::string& text) { return set_address_networkd(text, c); }));
      return {};
    }
  }
  for (const std::string& f : UTSUSHI_TRY(files(t, {k_ifupdown_files[0], k_ifupdown_files[1]}))) {
    std::vector<std::string> ifaces = ifupdown_address_interfaces(UTSUSHI_TRY(t.read(f)).value_or(""));
    if (!ifaces.empty()) {
      UTSUSHI_TRY(edit(f, [&](const std::string& text) { return set_address_ifupdown(text, ifaces.front(), c); }));
      return {};
    }
  }
  bool networkd = !UTSUSHI_TRY(t.session().glob("/etc/systemd/system/*.wants/systemd-networkd.service")).empty();
  if (networkd && !p.macs.empty()) {
    UTSUSHI_TRY(t.write("/etc/systemd/network/10-utsushi-clone.network", networkd_address_file(p.macs.front(), c),
                        "the guest configured no address: systemd-networkd (enabled) configures this NIC"));
    return {};
  }
  return fail(Errc::not_supported,
              "the guest configures no address for a NIC in ifupdown, systemd-networkd, NetworkManager or netplan "
              "(and systemd-networkd is not enabled), so there is nothing to set the address in");
}

Result<void> nm_connection_uuids(Target& t) {
  for (const std::string& f : UTSUSHI_TRY(files(t, {k_nm_connections}))) {
    std::string text = UTSUSHI_TRY(t.read(f)).value_or("");
    Edited e = set_nm_uuid(text, random_uuid());
    UTSUSHI_TRY(t.write(f, e.text, joined(e.edits)));
  }
  return {};
}

Result<void> dhcp_client_state(Target& t) {
  static constexpr std::array<std::string_view, 9> k_state = {
      "/var/lib/dhcp/*",  "/var/lib/dhclient/*", "/var/lib/NetworkManager/*.lease", "/var/lib/NetworkManager/dhclient-*",
      "/var/lib/NetworkManager/internal-*", "/var/lib/NetworkManager/secret_key", "/var/lib/dhcpcd/*",
      "/var/lib/dhcpcd5/*", "/var/lib/wicked/*"};
  UTSUSHI_TRY(remove_glob(t, k_state, "DHCP client state (leases, client ids) of the old machine"));
  return {};
}

}  // namespace

std::unique_ptr<Operation> make_udev_persistent_net(const IdentityParams& p) {
  return make_op("udev-persistent-net", "Persistent-net udev rules follow the new MACs (removed when none are given)", "",
                 [p](Target& t) { return udev_persistent_net(t, p); });
}

std::unique_ptr<Operation> make_net_hwaddr(const IdentityParams& p) {
  return make_op("net-hwaddr", "The old NICs' MACs in network configuration replaced by the new ones",
                 p.macs.empty() ? "no new MACs given" : "", [p](Target& t) { return net_hwaddr(t, p); });
}

std::unique_ptr<Operation> make_net_address(const IdentityParams& p) {
  return make_op("net-address", "A static address or DHCP, in the network system the guest uses",
                 p.address ? "" : "no address given", [p](Target& t) { return net_address(t, p); });
}

std::unique_ptr<Operation> make_nm_connection_uuids(const IdentityParams&) {
  return make_op("nm-connection-uuids", "Every NetworkManager connection gets a new UUID", "",
                 [](Target& t) { return nm_connection_uuids(t); });
}

std::unique_ptr<Operation> make_dhcp_client_state(const IdentityParams&) {
  return make_op("dhcp-client-state", "DHCP client leases and ids removed", "",
                 [](Target& t) { return dhcp_client_state(t); });
}

}  // namespace utsushi::guest::identity
