#pragma once
// Reading the syntax of network configuration files: ini files (systemd-networkd,
// NetworkManager keyfiles), netplan's YAML by indentation, udev rules. Private to
// the guest library: network_config.cpp (names) and network_address.cpp
// (addresses) read the same files.
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "text_util.h"
#include "utsushi/guest/config_edit.h"

namespace utsushi::guest::detail {

inline std::string unquote(std::string_view v) {
  v = trim(v);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return std::string(v);
}
inline bool is_comment(std::string_view line) {
  std::string_view t = trim(line);
  return t.empty() || t.front() == '#' || t.front() == ';';
}

// ---- ini files (networkd, NetworkManager) ----

inline std::string section_of(std::string_view line) {
  std::string_view t = trim(line);
  if (t.size() >= 2 && t.front() == '[' && t.back() == ']') {
    return std::string(t.substr(1, t.size() - 2));
  }
  return {};
}

inline std::optional<std::pair<std::string, std::string>> ini_pair(std::string_view line);

// Calls fn(section, key, value) for every key=value line of an ini file.
template <class Fn>
inline void for_each_ini_pair(std::string_view text, Fn fn) {
  std::string section;
  for (const std::string& line : split_lines(text)) {
    if (std::string s = section_of(line); !s.empty()) {
      section = s;
    } else if (auto kv = ini_pair(line)) {
      fn(section, kv->first, kv->second);
    }
  }
}

inline std::optional<std::pair<std::string, std::string>> ini_pair(std::string_view line) {
  if (is_comment(line)) {
    return std::nullopt;
  }
  std::size_t eq = line.find('=');
  if (eq == std::string_view::npos) {
    return std::nullopt;
  }
  return std::make_pair(std::string(trim(line.substr(0, eq))), std::string(trim(line.substr(eq + 1))));
}

// ---- netplan (YAML by indentation: enough for its ethernets section) ----

inline std::size_t indent_of(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && line[i] == ' ') {
    ++i;
  }
  return i;
}

struct YamlLine {
  std::size_t indent = 0;
  std::string key;    // "" when the line is not "key: value" / "key:"
  std::string value;  // unquoted
};

inline YamlLine yaml_line(std::string_view line) {
  YamlLine y;
  y.indent = indent_of(line);
  std::string_view t = trim(line);
  std::size_t hash = t.find(" #");
  if (hash != std::string_view::npos) {
    t = trim(t.substr(0, hash));
  }
  if (t.empty() || t.front() == '#' || t.front() == '-') {
    return y;
  }
  std::size_t colon = t.find(':');
  if (colon == std::string_view::npos) {
    return y;
  }
  y.key = unquote(t.substr(0, colon));
  y.value = unquote(t.substr(colon + 1));
  return y;
}

// One ethernets entry of a netplan file: its line range and what binds it.
struct NetplanEthernet {
  std::string id;
  std::size_t first = 0, last = 0;  // lines [first, last)
  std::optional<std::size_t> match_line;
  std::string match_name;
  std::optional<std::size_t> driver_line;
  bool has_macaddress = false;
  std::string set_name;
  // The name this entry's NIC ends up with.
  std::string bound_name() const {
    if (!set_name.empty()) {
      return set_name;
    }
    return match_line ? match_name : id;
  }
};

inline std::vector<NetplanEthernet> netplan_ethernets(const std::vector<std::string>& lines) {
  std::vector<NetplanEthernet> out;
  bool in_ethernets = false;
  std::size_t eth_indent = 0;
  std::size_t child_indent = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    YamlLine y = yaml_line(lines[i]);
    if (y.key.empty()) {
      continue;
    }
    if (in_ethernets && y.indent <= eth_indent) {
      in_ethernets = false;
      if (!out.empty() && out.back().last == 0) {
        out.back().last = i;
      }
    }
    if (!in_ethernets) {
      if (y.key == "ethernets" && y.value.empty()) {
        in_ethernets = true;
        eth_indent = y.indent;
        child_indent = 0;
      }
      continue;
    }
    if (child_indent == 0) {
      child_indent = y.indent;
    }
    if (y.indent == child_indent) {
      if (!out.empty() && out.back().last == 0) {
        out.back().last = i;
      }
      NetplanEthernet e;
      e.id = y.key;
      e.first = i;
      out.push_back(std::move(e));
      continue;
    }
    if (out.empty()) {
      continue;
    }
    NetplanEthernet& e = out.back();
    if (y.key == "match" && y.value.empty()) {
      e.match_line = i;
    } else if (y.key == "set-name") {
      e.set_name = y.value;
    } else if (e.match_line && y.indent > indent_of(lines[*e.match_line])) {
      if (y.key == "name") {
        e.match_name = y.value;
      } else if (y.key == "driver") {
        e.driver_line = i;
      } else if (y.key == "macaddress") {
        e.has_macaddress = true;
      }
    }
  }
  if (!out.empty() && out.back().last == 0) {
    out.back().last = lines.size();
  }
  return out;
}

// ---- udev rules ----

// The [start, end) of the value of a NAME= / NAME:= key in a rule line.
inline std::optional<std::pair<std::size_t, std::size_t>> udev_name_value(std::string_view line) {
  for (std::string_view key : {"NAME=\"", "NAME:=\""}) {
    std::size_t pos = line.find(key);
    while (pos != std::string_view::npos && pos > 0 && std::isalpha(static_cast<unsigned char>(line[pos - 1]))) {
      pos = line.find(key, pos + 1);  // not KERNEL_NAME= or similar
    }
    if (pos != std::string_view::npos) {
      std::size_t start = pos + key.size();
      std::size_t end = line.find('"', start);
      if (end != std::string_view::npos) {
        return std::make_pair(start, end);
      }
    }
  }
  return std::nullopt;
}

inline bool is_net_rule(std::string_view line) {
  return !is_comment(line) && line.find("SUBSYSTEM==\"net\"") != std::string_view::npos;
}

}  // namespace utsushi::guest::detail
