#include "utsushi/guest/network_address.h"

#include <arpa/inet.h>
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>

#include "config_syntax.h"
#include "text_util.h"

namespace utsushi::guest {
namespace {

using namespace detail;

bool final_newline(std::string_view text) { return text.empty() || text.back() == '\n'; }

std::string describe(const AddressConfig& c) {
  if (c.dhcp) {
    return "DHCP";
  }
  std::string s = "static " + c.address;
  if (!c.gateway.empty()) {
    s += " via " + c.gateway;
  }
  if (!c.dns.empty()) {
    s += fmt::format(", DNS {}", fmt::join(c.dns, " "));
  }
  return s;
}

// An ini file with `section`'s keys that `drop` selects removed, `keys` put
// right after the section's header (the section appended when absent), and
// every section named in `drop_sections` removed whole. Edits are empty when
// the text comes out unchanged.
template <class DropKey>
Edited replace_section_keys(std::string_view text, std::string_view section_name, DropKey drop,
                            const std::vector<std::string>& keys, std::initializer_list<std::string_view> drop_sections) {
  Edited out;
  std::vector<std::string> lines;
  std::string section;
  bool dropping_section = false;
  bool seen = false;
  for (const std::string& line : split_lines(text)) {
    if (std::string s = section_of(line); !s.empty()) {
      section = s;
      dropping_section = std::find(drop_sections.begin(), drop_sections.end(), s) != drop_sections.end();
      if (dropping_section) {
        out.edits.push_back(fmt::format("[{}] section removed", s));
        continue;
      }
      lines.push_back(line);
      if (s == section_name) {
        seen = true;
        lines.insert(lines.end(), keys.begin(), keys.end());
      }
      continue;
    }
    if (dropping_section) {
      continue;
    }
    auto kv = ini_pair(line);
    if (section == section_name && kv && drop(kv->first)) {
      out.edits.push_back(fmt::format("[{}] {}={} removed", section_name, kv->first, kv->second));
      continue;
    }
    lines.push_back(line);
  }
  if (!seen) {
    if (!lines.empty() && !trim(lines.back()).empty()) {
      lines.emplace_back();
    }
    lines.push_back(fmt::format("[{}]", section_name));
    lines.insert(lines.end(), keys.begin(), keys.end());
  }
  out.text = join_lines(lines, true);
  if (out.text == text) {
    out.edits.clear();
  }
  return out;
}

// ---- networkd ----

bool networkd_address_key(std::string_view key) {
  return key == "DHCP" || key == "Address" || key == "Gateway" || key == "DNS";
}

std::vector<std::string> networkd_keys(const AddressConfig& c) {
  if (c.dhcp) {
    return {"DHCP=ipv4"};
  }
  std::vector<std::string> keys{"Address=" + c.address};
  if (!c.gateway.empty()) {
    keys.push_back("Gateway=" + c.gateway);
  }
  for (const std::string& d : c.dns) {
    keys.push_back("DNS=" + d);
  }
  return keys;
}

// ---- ifupdown ----

bool ifupdown_stanza_start(std::string_view first_word) {
  return first_word == "iface" || first_word == "auto" || first_word.starts_with("allow-") ||
         first_word == "mapping" || first_word == "source" || first_word == "source-directory";
}

bool ifupdown_address_option(std::string_view key) {
  return key == "address" || key == "netmask" || key == "gateway" || key == "broadcast" || key == "network" ||
         key == "dns-nameservers";
}

// ---- NetworkManager ----

bool nm_address_key(std::string_view key) {
  return key == "method" || key == "gateway" || key == "dns" || key == "addresses" ||
         (key.starts_with("address") && key.size() > 7 && std::isdigit(static_cast<unsigned char>(key[7])) != 0);
}

std::vector<std::string> nm_keys(const AddressConfig& c) {
  if (c.dhcp) {
    return {"method=auto"};
  }
  std::vector<std::string> keys{"method=manual", "address1=" + c.address + (c.gateway.empty() ? "" : "," + c.gateway)};
  if (!c.dns.empty()) {
    keys.push_back(fmt::format("dns={};", fmt::join(c.dns, ";")));
  }
  return keys;
}

// ---- netplan ----

std::vector<std::string> netplan_keys(const AddressConfig& c, std::size_t indent) {
  std::string pad(indent, ' ');
  if (c.dhcp) {
    return {pad + "dhcp4: true"};
  }
  std::vector<std::string> keys{pad + "dhcp4: false", pad + "addresses: [" + c.address + "]"};
  if (!c.gateway.empty()) {
    keys.push_back(pad + "routes:");
    keys.push_back(pad + "  - to: 0.0.0.0/0");
    keys.push_back(pad + "    via: " + c.gateway);
  }
  if (!c.dns.empty()) {
    keys.push_back(pad + "nameservers:");
    keys.push_back(fmt::format("{}  addresses: [{}]", pad, fmt::join(c.dns, ", ")));
  }
  return keys;
}

bool netplan_address_key(std::string_view key) {
  return key == "dhcp4" || key == "addresses" || key == "gateway4" || key == "routes" || key == "nameservers";
}

}  // namespace

bool split_cidr(std::string_view cidr, std::string& address, int& prefix) {
  std::size_t slash = cidr.find('/');
  if (slash == std::string_view::npos) {
    return false;
  }
  std::string addr(cidr.substr(0, slash));
  std::string_view p = cidr.substr(slash + 1);
  int value = -1;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  in_addr parsed{};
  if (ec != std::errc() || end != p.data() + p.size() || value < 0 || value > 32 ||
      ::inet_pton(AF_INET, addr.c_str(), &parsed) != 1) {
    return false;
  }
  address = addr;
  prefix = value;
  return true;
}

std::string netmask_of(int prefix) {
  std::uint32_t mask = prefix <= 0 ? 0 : ~std::uint32_t{0} << (32 - std::min(prefix, 32));
  return fmt::format("{}.{}.{}.{}", mask >> 24, (mask >> 16) & 0xff, (mask >> 8) & 0xff, mask & 0xff);
}

bool networkd_sets_address(std::string_view text) {
  bool address = false;
  std::vector<std::string> names;
  for_each_ini_pair(text, [&](const std::string& section, const std::string& key, const std::string& value) {
    if (section == "Network" && networkd_address_key(key) && key != "DNS") {
      address = true;
    } else if (section == "Address" && key == "Address") {
      address = true;
    } else if (section == "Match" && key == "Name") {
      for (const std::string& n : split_words(value)) {
        names.push_back(n);
      }
    }
  });
  bool only_lo = !names.empty() && std::all_of(names.begin(), names.end(), [](const std::string& n) { return n == "lo"; });
  return address && !only_lo;
}

Edited set_address_networkd(std::string_view text, const AddressConfig& config) {
  Edited out = replace_section_keys(text, "Network", networkd_address_key, networkd_keys(config), {"Address", "Route"});
  if (out.changed()) {
    out.edits.push_back("address: " + describe(config));
  }
  return out;
}

std::string networkd_address_file(std::string_view mac, const AddressConfig& config) {
  std::string text = fmt::format("# Written by utsushi clone: this clone's NIC and its address.\n[Match]\nMACAddress={}\n\n[Network]\n", mac);
  for (const std::string& k : networkd_keys(config)) {
    text += k + "\n";
  }
  return text;
}

std::vector<std::string> ifupdown_address_interfaces(std::string_view text) {
  std::vector<std::string> names;
  for (const std::string& line : split_lines(text)) {
    if (is_comment(line)) {
      continue;
    }
    std::vector<std::string> w = split_words(line);
    if (w.size() >= 4 && w[0] == "iface" && w[2] == "inet" && w[1] != "lo" && (w[3] == "dhcp" || w[3] == "static") &&
        std::find(names.begin(), names.end(), w[1]) == names.end()) {
      names.push_back(w[1]);
    }
  }
  return names;
}

Edited set_address_ifupdown(std::string_view text, std::string_view iface, const AddressConfig& config) {
  Edited out;
  std::vector<std::string> lines;
  bool in_stanza = false;
  for (const std::string& line : split_lines(text)) {
    std::vector<std::string> w = is_comment(line) ? std::vector<std::string>{} : split_words(line);
    if (!w.empty() && ifupdown_stanza_start(w[0])) {
      in_stanza = false;
    }
    if (w.size() >= 4 && w[0] == "iface" && w[1] == iface && w[2] == "inet") {
      in_stanza = true;
      std::string method = config.dhcp ? "dhcp" : "static";
      std::string head = fmt::format("iface {} inet {}", iface, method);
      for (std::size_t i = 4; i < w.size(); ++i) {
        head += " " + w[i];
      }
      lines.push_back(head);
      if (w[3] != method) {
        out.edits.push_back(fmt::format("iface {}: inet {} -> inet {}", iface, w[3], method));
      }
      if (!config.dhcp) {
        lines.push_back("    address " + config.address);
        if (!config.gateway.empty()) {
          lines.push_back("    gateway " + config.gateway);
        }
        if (!config.dns.empty()) {
          lines.push_back(fmt::format("    dns-nameservers {}", fmt::join(config.dns, " ")));
        }
      }
      continue;
    }
    if (in_stanza && !w.empty() && ifupdown_address_option(w[0])) {
      out.edits.push_back(fmt::format("iface {}: {} removed", iface, trim(line)));
      continue;
    }
    lines.push_back(line);
  }
  out.text = join_lines(lines, final_newline(text));
  if (out.text == text) {
    out.edits.clear();
  } else {
    out.edits.push_back(fmt::format("iface {}: {}", iface, describe(config)));
  }
  return out;
}

bool nm_keyfile_is_ethernet(std::string_view text) {
  bool ethernet = false;
  for_each_ini_pair(text, [&](const std::string& section, const std::string& key, const std::string& value) {
    if (section == "connection" && key == "type") {
      ethernet = value == "ethernet" || value == "802-3-ethernet";
    }
  });
  return ethernet;
}

Edited set_address_nm_keyfile(std::string_view text, const AddressConfig& config) {
  Edited out = replace_section_keys(text, "ipv4", nm_address_key, nm_keys(config), {});
  if (out.changed()) {
    out.edits.push_back("ipv4: " + describe(config));
  }
  return out;
}

std::vector<std::string> netplan_ethernet_ids(std::string_view text) {
  std::vector<std::string> ids;
  for (const NetplanEthernet& e : netplan_ethernets(split_lines(text))) {
    ids.push_back(e.id);
  }
  return ids;
}

Edited set_address_netplan(std::string_view text, std::string_view id, const AddressConfig& config) {
  Edited out;
  std::vector<std::string> lines = split_lines(text);
  std::vector<NetplanEthernet> eths = netplan_ethernets(lines);
  auto it = std::find_if(eths.begin(), eths.end(), [&](const NetplanEthernet& e) { return e.id == id; });
  if (it == eths.end()) {
    out.text = std::string(text);
    return out;
  }
  std::size_t entry_indent = indent_of(lines[it->first]);
  std::size_t child_indent = 0;
  std::vector<std::string> body;
  bool dropping = false;
  for (std::size_t i = it->first + 1; i < it->last; ++i) {
    YamlLine y = yaml_line(lines[i]);
    std::size_t indent = indent_of(lines[i]);
    bool blank = trim(lines[i]).empty();
    if (!blank && child_indent == 0 && indent > entry_indent) {
      child_indent = indent;
    }
    if (!blank && indent == child_indent && !y.key.empty()) {
      dropping = netplan_address_key(y.key);
      if (dropping) {
        out.edits.push_back(fmt::format("ethernets.{}: {} removed", id, y.key));
      }
    } else if (!blank && indent <= child_indent) {
      dropping = false;
    }
    if (!dropping) {
      body.push_back(lines[i]);
    }
  }
  if (child_indent == 0) {
    child_indent = entry_indent + 2;
  }
  std::vector<std::string> keys = netplan_keys(config, child_indent);
  std::vector<std::string> result(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(it->first + 1));
  result.insert(result.end(), keys.begin(), keys.end());
  result.insert(result.end(), body.begin(), body.end());
  result.insert(result.end(), lines.begin() + static_cast<std::ptrdiff_t>(it->last), lines.end());
  out.text = join_lines(result, final_newline(text));
  if (out.text == text) {
    out.edits.clear();
  } else {
    out.edits.push_back(fmt::format("ethernets.{}: {}", id, describe(config)));
  }
  return out;
}

}  // namespace utsushi::guest
