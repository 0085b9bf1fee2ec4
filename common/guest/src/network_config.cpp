#include "utsushi/guest/network_config.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "config_syntax.h"
#include "text_util.h"
#include "utsushi/guest/config_edit.h"

namespace utsushi::guest {
namespace {

using namespace detail;

std::vector<std::string> words_of(std::string_view s) { return detail::split_words(s); }

bool is_literal_name(std::string_view n) {
  return !n.empty() && n != "lo" && n.find_first_of("*?[!") == std::string_view::npos;
}

// "eth0.100" / "eth0:1" -> "eth0".
std::string base_name(std::string_view n) { return std::string(n.substr(0, n.find_first_of(".:"))); }

void add_unique(std::vector<std::string>& names, std::string name) {
  if (is_literal_name(name) && std::find(names.begin(), names.end(), name) == names.end()) {
    names.push_back(std::move(name));
  }
}

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-'; }

// Replaces whole-name occurrences of `from` in `line`.
std::string replace_word(std::string_view line, std::string_view from, std::string_view to) {
  std::string out;
  std::size_t i = 0;
  while (i < line.size()) {
    std::size_t pos = line.find(from, i);
    if (pos == std::string_view::npos) {
      out.append(line.substr(i));
      break;
    }
    bool left = pos == 0 || !is_name_char(line[pos - 1]);
    bool right = pos + from.size() >= line.size() || !is_name_char(line[pos + from.size()]);
    out.append(line.substr(i, pos - i));
    out.append(left && right ? to : from);
    i = pos + from.size();
  }
  return out;
}

// ---- ifupdown ----

bool ifupdown_virtual_option(std::string_view key) {
  static const std::vector<std::string_view> k{"bridge_ports", "bridge-ports", "bond-slaves", "bond_slaves",
                                               "slaves", "vlan-raw-device", "vlan_raw_device"};
  return std::find(k.begin(), k.end(), key) != k.end();
}

bool ifupdown_port_option(std::string_view key) {
  return ifupdown_virtual_option(key) || key == "bond-primary" || key == "bond_primary";
}

}  // namespace

std::vector<std::string> interfaces_ifupdown(std::string_view text) {
  std::vector<std::string> names, virtual_names;
  std::string stanza;
  for (const std::string& line : split_lines(text)) {
    if (is_comment(line)) {
      continue;
    }
    std::vector<std::string> w = words_of(line);
    if (w.empty()) {
      continue;
    }
    const std::string& key = w[0];
    if (key == "iface" && w.size() >= 2) {
      stanza = w[1];
      add_unique(names, base_name(w[1]));
    } else if ((key == "auto" || key.starts_with("allow-")) && w.size() >= 2) {
      stanza.clear();
      for (std::size_t i = 1; i < w.size(); ++i) {
        add_unique(names, base_name(w[i]));
      }
    } else if (key == "mapping" || key == "source" || key == "source-directory") {
      stanza.clear();
    } else if (ifupdown_port_option(key)) {
      if (ifupdown_virtual_option(key) && !stanza.empty()) {
        virtual_names.push_back(stanza);
      }
      for (std::size_t i = 1; i < w.size(); ++i) {
        if (w[i] != "none" && w[i] != "all") {
          add_unique(names, base_name(w[i]));
        }
      }
    }
  }
  std::erase_if(names, [&](const std::string& n) {
    return std::find(virtual_names.begin(), virtual_names.end(), n) != virtual_names.end();
  });
  return names;
}

std::vector<std::string> interfaces_networkd(std::string_view text) {
  std::vector<std::string> names;
  for_each_ini_pair(text, [&](const std::string& section, const std::string& key, const std::string& value) {
    if (key == "Name" && (section == "Match" || section == "Link")) {
      for (const std::string& n : words_of(value)) {
        add_unique(names, n);
      }
    }
  });
  return names;
}

std::vector<std::string> interfaces_nm_keyfile(std::string_view text) {
  std::vector<std::string> names;
  for_each_ini_pair(text, [&](const std::string& section, const std::string& key, const std::string& value) {
    if (section == "connection" && key == "interface-name") {
      add_unique(names, value);
    }
  });
  return names;
}

std::vector<std::string> interfaces_netplan(std::string_view text) {
  std::vector<std::string> names;
  for (const NetplanEthernet& e : netplan_ethernets(split_lines(text))) {
    if (e.match_line && !e.match_name.empty()) {
      add_unique(names, e.match_name);
    } else if (!e.match_line) {
      add_unique(names, e.id);
    }
    if (!e.set_name.empty()) {
      add_unique(names, e.set_name);
    }
  }
  return names;
}

std::vector<std::string> interfaces_udev_rules(std::string_view text) {
  std::vector<std::string> names;
  for (const std::string& line : split_lines(text)) {
    if (!is_net_rule(line)) {
      continue;
    }
    if (auto v = udev_name_value(line)) {
      add_unique(names, line.substr(v->first, v->second - v->first));
    }
  }
  return names;
}

std::vector<std::string> interfaces_of(NetworkSystem system, std::string_view text) {
  switch (system) {
    case NetworkSystem::ifupdown: return interfaces_ifupdown(text);
    case NetworkSystem::networkd: return interfaces_networkd(text);
    case NetworkSystem::networkmanager: return interfaces_nm_keyfile(text);
    case NetworkSystem::netplan: return interfaces_netplan(text);
    case NetworkSystem::udev_rules: return interfaces_udev_rules(text);
  }
  return {};
}

std::string rebind(NetworkSystem system, std::string_view text, std::string_view from, std::string_view to) {
  std::vector<std::string> lines = split_lines(text);
  std::string section;
  for (std::string& line : lines) {
    if (is_comment(line)) {
      continue;
    }
    switch (system) {
      case NetworkSystem::ifupdown:
      case NetworkSystem::netplan:
        line = replace_word(line, from, to);
        break;
      case NetworkSystem::networkd:
      case NetworkSystem::networkmanager: {
        if (std::string s = section_of(line); !s.empty()) {
          section = s;
          break;
        }
        auto kv = ini_pair(line);
        bool networkd_name = system == NetworkSystem::networkd && kv && kv->first == "Name";
        bool nm_name = system == NetworkSystem::networkmanager && kv && kv->first == "interface-name" &&
                       section == "connection";
        if (networkd_name || nm_name) {
          std::size_t eq = line.find('=');
          line = line.substr(0, eq + 1) + replace_word(line.substr(eq + 1), from, to);
        }
        break;
      }
      case NetworkSystem::udev_rules:
        if (auto v = udev_name_value(line); v && is_net_rule(line) &&
                                            std::string_view(line).substr(v->first, v->second - v->first) == from) {
          line.replace(v->first, v->second - v->first, to);
        }
        break;
    }
  }
  return join_lines(lines, !text.empty() && text.back() == '\n');
}

std::string drop_hardware_matches(NetworkSystem system, std::string_view text, std::string_view name,
                                  std::string_view mac) {
  std::vector<std::string> lines = split_lines(text);
  const bool final_nl = !text.empty() && text.back() == '\n';
  if (system == NetworkSystem::networkd) {
    std::vector<std::string> names = interfaces_networkd(text);
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return std::string(text);
    }
    std::string section;
    std::erase_if(lines, [&](const std::string& line) {
      if (std::string s = section_of(line); !s.empty()) {
        section = s;
        return false;
      }
      auto kv = ini_pair(line);
      return section == "Match" && kv && (kv->first == "Driver" || kv->first == "Path");
    });
    return join_lines(lines, final_nl);
  }
  if (system == NetworkSystem::netplan) {
    std::vector<NetplanEthernet> eths = netplan_ethernets(lines);
    for (auto it = eths.rbegin(); it != eths.rend(); ++it) {
      if (it->bound_name() != name || !it->driver_line) {
        continue;
      }
      std::size_t at = *it->driver_line;
      if (it->has_macaddress) {
        lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(at));
      } else {
        lines[at] = std::string(indent_of(lines[at]), ' ') + "macaddress: \"" + std::string(mac) + "\"";
      }
    }
    return join_lines(lines, final_nl);
  }
  if (system == NetworkSystem::udev_rules) {
    for (std::string& line : lines) {
      auto v = udev_name_value(line);
      if (!is_net_rule(line) || !v || std::string_view(line).substr(v->first, v->second - v->first) != name) {
        continue;
      }
      std::vector<std::string> parts;
      std::string rebuilt;
      std::size_t start = 0;
      while (start <= line.size()) {
        std::size_t comma = line.find(',', start);
        std::string part = line.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        std::string t(trim(part));
        bool hardware = (t.starts_with("DRIVERS==\"") || t.starts_with("DRIVER==\"") || t.starts_with("KERNELS==\"")) &&
                        t != "DRIVERS==\"?*\"";
        if (!hardware) {
          parts.push_back(std::string(trim(part)));
        }
        if (comma == std::string::npos) {
          break;
        }
        start = comma + 1;
      }
      std::string joined;
      for (const std::string& p : parts) {
        joined += joined.empty() ? p : ", " + p;
      }
      line = joined;
    }
    return join_lines(lines, final_nl);
  }
  return std::string(text);
}

std::string pin_link_file(std::string_view name, std::string_view mac) {
  return fmt::format(
      "# Written by utsushi: the NIC with MAC {1} keeps the name {0} its\n"
      "# configuration uses. OriginalName= limits this to kernel-named NICs, so\n"
      "# bridges, bonds and VLANs that share the MAC keep their own names.\n"
      "[Match]\nMACAddress={1}\nOriginalName=eth*\n\n[Link]\nName={0}\n",
      name, mac);
}

std::string pin_udev_rule(std::string_view name, std::string_view mac) {
  return fmt::format(
      "SUBSYSTEM==\"net\", ACTION==\"add\", ATTR{{address}}==\"{1}\", ATTR{{type}}==\"1\", KERNEL==\"eth*\", "
      "NAME=\"{0}\"",
      name, mac);
}

bool normalise_mac(std::string& mac) {
  std::string out;
  int digits = 0;
  for (std::size_t i = 0; i < mac.size(); ++i) {
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(mac[i])));
    if (std::isxdigit(static_cast<unsigned char>(c)) != 0) {
      out += c;
      ++digits;
      if (digits % 2 == 0 && digits < 12) {
        if (i + 1 >= mac.size() || (mac[i + 1] != ':' && mac[i + 1] != '-')) {
          return false;
        }
        out += ':';
        ++i;
      }
    } else {
      return false;
    }
  }
  if (digits != 12) {
    return false;
  }
  mac = out;
  return true;
}

}  // namespace utsushi::guest
