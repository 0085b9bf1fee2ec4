#include "utsushi/guest/identity_edit.h"

#include <sys/random.h>

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "config_syntax.h"
#include "text_util.h"

namespace utsushi::guest {
namespace {

using namespace detail;

bool final_newline(std::string_view text) { return text.empty() || text.back() == '\n'; }

bool host_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_'; }

std::string short_name(std::string_view name) { return std::string(name.substr(0, name.find('.'))); }

// Replaces whole host-name words equal to `from` by `to` in one hosts line
// (the address field is left alone).
std::string replace_host_word(const std::string& line, std::string_view from, std::string_view to) {
  std::vector<std::string> words = split_words(line);
  if (words.size() < 2 || from.empty() || std::find(words.begin() + 1, words.end(), from) == words.end()) {
    return line;
  }
  std::string out;
  std::size_t i = 0;
  bool first = true;
  while (i < line.size()) {
    if (!host_char(line[i])) {
      out.push_back(line[i++]);
      continue;
    }
    std::size_t start = i;
    while (i < line.size() && host_char(line[i])) {
      ++i;
    }
    std::string_view word(line.data() + start, i - start);
    out.append(!first && word == from ? to : word);
    first = false;
  }
  return out;
}

bool names_host(const std::string& line, std::string_view name) {
  std::vector<std::string> words = split_words(line);
  return words.size() >= 2 && std::find(words.begin() + 1, words.end(), name) != words.end();
}

// Parses "aa:bb:cc:dd:ee:ff" / "AA-BB-..." at `pos`; the normalised MAC or "".
std::string mac_at(std::string_view text, std::size_t pos) {
  if (pos + 17 > text.size()) {
    return {};
  }
  char sep = text[pos + 2];
  if (sep != ':' && sep != '-') {
    return {};
  }
  std::string mac;
  for (std::size_t i = 0; i < 17; ++i) {
    char c = text[pos + i];
    if (i % 3 == 2) {
      if (c != sep) {
        return {};
      }
      mac.push_back(':');
    } else if (std::isxdigit(static_cast<unsigned char>(c)) != 0) {
      mac.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else {
      return {};
    }
  }
  bool left_ok = pos == 0 || std::isxdigit(static_cast<unsigned char>(text[pos - 1])) == 0;
  bool right_ok = pos + 17 == text.size() || std::isxdigit(static_cast<unsigned char>(text[pos + 17])) == 0;
  return left_ok && right_ok ? mac : std::string();
}

std::string styled_like(std::string_view original, const std::string& mac) {
  std::string out = mac;
  bool upper = std::any_of(original.begin(), original.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; });
  char sep = original[2];
  for (char& c : out) {
    if (c == ':') {
      c = sep;
    } else if (upper) {
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

bool is_rule_with_name(std::string_view line) { return is_net_rule(line) && udev_name_value(line).has_value(); }

}  // namespace

Edited set_hosts_name(std::string_view hosts, std::string_view old_name, std::string_view new_name) {
  Edited out;
  std::vector<std::string> lines = split_lines(hosts);
  std::string old_short = short_name(old_name), new_short = short_name(new_name);
  for (std::string& line : lines) {
    if (is_comment(line)) {
      continue;
    }
    std::string edited = replace_host_word(line, old_name, new_name);
    if (old_short != old_name) {
      edited = replace_host_word(edited, old_short, new_short);
    }
    if (edited != line) {
      out.edits.push_back(fmt::format("'{}' -> '{}'", trim(line), trim(edited)));
      line = edited;
    }
  }
  bool named = std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return !is_comment(l) && names_host(l, new_name); });
  if (!named) {
    std::string entry = new_short != new_name ? fmt::format("127.0.1.1\t{} {}", new_name, new_short)
                                              : fmt::format("127.0.1.1\t{}", new_name);
    // After the loopback lines, as Debian's installer writes it.
    auto at = std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
      return !is_comment(l) && !split_words(l).empty() && split_words(l)[0] != "127.0.0.1";
    });
    if (at != lines.end() && split_words(*at)[0] == "127.0.1.1") {
      *at = entry;
    } else {
      lines.insert(at, entry);
    }
    out.edits.push_back(fmt::format("'{}' added", entry));
  }
  out.text = join_lines(lines, final_newline(hosts));
  return out;
}

Result<Edited> set_shadow_password(std::string_view shadow, std::string_view user, std::string_view hash, long days) {
  Edited out;
  std::vector<std::string> lines = split_lines(shadow);
  bool found = false;
  for (std::string& line : lines) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (true) {
      std::size_t colon = line.find(':', start);
      fields.push_back(line.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
      if (colon == std::string::npos) {
        break;
      }
      start = colon + 1;
    }
    if (fields.size() < 3 || fields[0] != user) {
      continue;
    }
    found = true;
    fields[1] = std::string(hash);
    fields[2] = std::to_string(days);
    std::string rebuilt;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      rebuilt += (i == 0 ? "" : ":") + fields[i];
    }
    if (rebuilt != line) {
      out.edits.push_back(fmt::format("{}: password set (hash {}...)", user, hash.substr(0, std::min<std::size_t>(3, hash.size()))));
      line = std::move(rebuilt);
    }
  }
  if (!found) {
    return fail(Errc::not_found, fmt::format("/etc/shadow has no entry for {}", user));
  }
  out.text = join_lines(lines, final_newline(shadow));
  return out;
}

Edited remap_macs(std::string_view text, const std::map<std::string, std::string>& macs) {
  Edited out;
  std::string result;
  std::size_t i = 0;
  while (i < text.size()) {
    std::string mac = std::isxdigit(static_cast<unsigned char>(text[i])) != 0 ? mac_at(text, i) : std::string();
    auto it = mac.empty() ? macs.end() : macs.find(mac);
    if (it != macs.end()) {
      result += styled_like(text.substr(i, 17), it->second);
      if (mac != it->second) {
        out.edits.push_back(fmt::format("MAC {} -> {}", mac, it->second));
      }
      i += 17;
    } else {
      result.push_back(text[i++]);
    }
  }
  out.text = std::move(result);
  return out;
}

std::vector<std::string> macs_in(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i + 17 <= text.size(); ++i) {
    std::string mac = mac_at(text, i);
    if (!mac.empty()) {
      if (std::find(out.begin(), out.end(), mac) == out.end()) {
        out.push_back(mac);
      }
      i += 16;
    }
  }
  return out;
}

Edited keep_net_rules(std::string_view text, std::size_t keep) {
  Edited out;
  std::vector<std::string> lines;
  std::size_t rules = 0;
  for (const std::string& line : split_lines(text)) {
    if (is_rule_with_name(line) && rules++ >= keep) {
      out.edits.push_back(fmt::format("rule removed: {}", trim(line)));
      continue;
    }
    lines.push_back(line);
  }
  out.text = join_lines(lines, final_newline(text));
  return out;
}

Edited set_nm_uuid(std::string_view keyfile, std::string_view uuid) {
  Edited out;
  std::vector<std::string> lines = split_lines(keyfile);
  std::string section;
  bool set = false;
  std::optional<std::size_t> connection_header;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (std::string s = section_of(lines[i]); !s.empty()) {
      section = s;
      if (s == "connection") {
        connection_header = i;
      }
      continue;
    }
    auto kv = ini_pair(lines[i]);
    if (section == "connection" && kv && kv->first == "uuid") {
      if (kv->second != uuid) {
        out.edits.push_back(fmt::format("uuid {} -> {}", kv->second, uuid));
        lines[i] = fmt::format("uuid={}", uuid);
      }
      set = true;
    }
  }
  if (!set) {
    std::string line = fmt::format("uuid={}", uuid);
    if (connection_header) {
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(*connection_header + 1), line);
    } else {
      lines.insert(lines.begin(), {"[connection]", line});
    }
    out.edits.push_back(fmt::format("uuid {} added", uuid));
  }
  out.text = join_lines(lines, final_newline(keyfile));
  return out;
}

std::vector<std::uint8_t> random_bytes(std::size_t n) {
  std::vector<std::uint8_t> out(n);
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::getrandom(out.data() + done, n - done, 0);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      // getrandom(2) without flags blocks until the pool is ready and does not
      // fail otherwise on Linux >= 3.17; reaching here is a broken kernel.
      std::fprintf(stderr, "getrandom: %s\n", std::strerror(errno));
      std::abort();
    }
    done += static_cast<std::size_t>(r);
  }
  return out;
}

std::string random_uuid() {
  std::vector<std::uint8_t> b = random_bytes(16);
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  std::string s;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      s.push_back('-');
    }
    s += fmt::format("{:02x}", b[i]);
  }
  return s;
}

std::string random_machine_id() {
  while (true) {
    std::vector<std::uint8_t> b = random_bytes(16);
    if (std::any_of(b.begin(), b.end(), [](std::uint8_t x) { return x != 0; })) {
      std::string s;
      for (std::uint8_t x : b) {
        s += fmt::format("{:02x}", x);
      }
      return s;
    }
  }
}

long days_since_epoch(std::int64_t unix_seconds) { return static_cast<long>(unix_seconds / 86400); }

}  // namespace utsushi::guest
