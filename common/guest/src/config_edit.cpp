#include "utsushi/guest/config_edit.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "text_util.h"

namespace utsushi::guest {
namespace {

using detail::split_words;
using detail::trim;

bool is_space(char c) { return c == ' ' || c == '\t'; }

bool is_comment_or_blank(std::string_view line) {
  std::string_view t = trim(line);
  return t.empty() || t.front() == '#';
}

// [begin, end) of the n-th whitespace-separated field of a line.
std::optional<std::pair<std::size_t, std::size_t>> field_span(std::string_view line, int n) {
  std::size_t i = 0;
  for (int f = 0;; ++f) {
    while (i < line.size() && is_space(line[i])) {
      ++i;
    }
    if (i >= line.size()) {
      return std::nullopt;
    }
    std::size_t start = i;
    while (i < line.size() && !is_space(line[i])) {
      ++i;
    }
    if (f == n) {
      return std::make_pair(start, i);
    }
  }
}

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) {
    if (!out.empty()) {
      out += ' ';
    }
    out += w;
  }
  return out;
}

bool ends_with_newline(std::string_view text) { return !text.empty() && text.back() == '\n'; }

// Rewrites field `n` of every non-comment line through `resolve`.
Edited rewrite_field(std::string_view text, int n, const DeviceResolver& resolve) {
  std::vector<std::string> lines = split_lines(text);
  Edited out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string& line = lines[i];
    if (is_comment_or_blank(line)) {
      continue;
    }
    auto span = field_span(line, n);
    if (!span) {
      continue;
    }
    std::string value = line.substr(span->first, span->second - span->first);
    std::optional<std::string> stable = resolve(value);
    if (stable && *stable != value) {
      line.replace(span->first, span->second - span->first, *stable);
      out.edits.push_back(fmt::format("line {}: {} -> {}", i + 1, value, *stable));
    }
  }
  out.text = join_lines(lines, ends_with_newline(text));
  return out;
}

std::string_view key_of(std::string_view token) {
  std::size_t eq = token.find('=');
  return eq == std::string_view::npos ? token : token.substr(0, eq);
}

std::string_view console_device(std::string_view token) {
  std::string_view v = token.substr(token.find('=') + 1);
  return v.substr(0, v.find(','));
}

bool has_equivalent(const std::vector<std::string>& words, std::string_view add) {
  std::string_view key = key_of(add);
  return std::any_of(words.begin(), words.end(), [&](const std::string& w) {
    if (key_of(w) != key) {
      return false;
    }
    return key != "console" || console_device(w) == console_device(add);
  });
}

// A shell assignment NAME=VALUE; the value without its quotes, and the quote used.
struct Assignment {
  std::string prefix;  // everything up to and including '='
  std::string value;
  char quote = 0;      // '"', '\'' or 0
  std::string suffix;  // after the closing quote (comments)
};

std::optional<Assignment> parse_assignment(std::string_view line, std::string_view name) {
  std::string_view t = line;
  std::size_t i = 0;
  while (i < t.size() && is_space(t[i])) {
    ++i;
  }
  if (t.substr(i).starts_with("export ")) {
    i += 7;
    while (i < t.size() && is_space(t[i])) {
      ++i;
    }
  }
  if (!t.substr(i).starts_with(name) || t.size() <= i + name.size() || t[i + name.size()] != '=') {
    return std::nullopt;
  }
  Assignment a;
  std::size_t v = i + name.size() + 1;
  a.prefix = std::string(t.substr(0, v));
  if (v < t.size() && (t[v] == '"' || t[v] == '\'')) {
    a.quote = t[v];
    std::size_t close = t.find(a.quote, v + 1);
    if (close == std::string_view::npos) {
      return std::nullopt;  // multi-line values are left alone
    }
    a.value = std::string(t.substr(v + 1, close - v - 1));
    a.suffix = std::string(t.substr(close + 1));
  } else {
    std::size_t end = v;
    while (end < t.size() && !is_space(t[end])) {
      ++end;
    }
    a.value = std::string(t.substr(v, end - v));
    a.suffix = std::string(t.substr(end));
  }
  return a;
}

std::string format_assignment(const Assignment& a) {
  char q = a.quote;
  if (q == 0 && a.value.find_first_of(" \t") != std::string::npos) {
    q = '"';
  }
  if (q == 0) {
    return a.prefix + a.value + a.suffix;
  }
  return a.prefix + q + a.value + q + a.suffix;
}

bool is_kernel_line(const std::vector<std::string>& words) {
  static const std::vector<std::string> k_cmds{"linux", "linux16", "linuxefi", "kernel"};
  return words.size() >= 2 && std::find(k_cmds.begin(), k_cmds.end(), words[0]) != k_cmds.end();
}

}  // namespace

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.emplace_back(text.substr(start));
      break;
    }
    lines.emplace_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines, bool final_newline) {
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    out += lines[i];
    if (i + 1 < lines.size() || final_newline) {
      out += '\n';
    }
  }
  return out;
}

std::vector<FstabEntry> parse_fstab(std::string_view text) {
  std::vector<FstabEntry> out;
  std::vector<std::string> lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (is_comment_or_blank(lines[i])) {
      continue;
    }
    std::vector<std::string> w = split_words(lines[i]);
    if (w.size() < 2) {
      continue;
    }
    FstabEntry e;
    e.line = i + 1;
    e.spec = w[0];
    e.file = w[1];
    e.vfstype = w.size() > 2 ? w[2] : "";
    e.options = w.size() > 3 ? w[3] : "defaults";
    out.push_back(std::move(e));
  }
  return out;
}

Edited rewrite_fstab(std::string_view text, const DeviceResolver& resolve) { return rewrite_field(text, 0, resolve); }

Edited rewrite_crypttab(std::string_view text, const DeviceResolver& resolve) {
  return rewrite_field(text, 1, resolve);
}

Edited add_fstab_option(std::string_view text, const std::function<bool(const FstabEntry&)>& pick,
                        std::string_view option) {
  std::vector<std::string> lines = split_lines(text);
  Edited out;
  for (const FstabEntry& e : parse_fstab(text)) {
    if (!pick(e)) {
      continue;
    }
    std::string& line = lines[e.line - 1];
    auto span = field_span(line, 3);
    std::vector<std::string> opts;
    std::stringstream ss(e.options);
    for (std::string o; std::getline(ss, o, ',');) {
      opts.push_back(o);
    }
    if (std::find(opts.begin(), opts.end(), option) != opts.end()) {
      continue;
    }
    std::string updated = e.options + "," + std::string(option);
    if (span) {
      line.replace(span->first, span->second - span->first, updated);
    } else {
      if (!field_span(line, 2)) {
        line += "\tauto";
      }
      line += "\t" + updated;
    }
    out.edits.push_back(fmt::format("line {}: {} {} gets {}", e.line, e.spec, e.file, option));
  }
  out.text = join_lines(lines, ends_with_newline(text));
  return out;
}

std::string rewrite_cmdline(std::string_view cmdline, const DeviceResolver& resolve,
                            const std::vector<std::string>& add, std::vector<std::string>& edits) {
  std::vector<std::string> words = split_words(cmdline);
  for (std::string& w : words) {
    std::string_view key = key_of(w);
    if ((key == "root" || key == "resume") && w.size() > key.size()) {
      std::string value = w.substr(key.size() + 1);
      if (std::optional<std::string> stable = resolve(value); stable && *stable != value) {
        std::string updated = std::string(key) + "=" + *stable;
        edits.push_back(w + " -> " + updated);
        w = updated;
      }
    }
  }
  for (const std::string& a : add) {
    if (!has_equivalent(words, a)) {
      words.push_back(a);
      edits.push_back("added " + a);
    }
  }
  return join_words(words);
}

Edited rewrite_default_grub(std::string_view text, const DeviceResolver& resolve,
                            const std::vector<std::string>& add) {
  std::vector<std::string> lines = split_lines(text);
  Edited out;
  bool has_linux = false;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (is_comment_or_blank(lines[i])) {
      continue;
    }
    for (std::string_view name : {"GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"}) {
      std::optional<Assignment> a = parse_assignment(lines[i], name);
      if (!a) {
        continue;
      }
      bool is_linux = name == "GRUB_CMDLINE_LINUX";
      has_linux = has_linux || is_linux;
      std::vector<std::string> edits;
      a->value = rewrite_cmdline(a->value, resolve, is_linux ? add : std::vector<std::string>{}, edits);
      if (!edits.empty()) {
        lines[i] = format_assignment(*a);
        for (const std::string& e : edits) {
          out.edits.push_back(fmt::format("line {}: {}: {}", i + 1, name, e));
        }
      }
    }
    if (std::optional<Assignment> a = parse_assignment(lines[i], "GRUB_DISABLE_LINUX_UUID"); a && a->value == "true") {
      a->value = "false";
      lines[i] = format_assignment(*a);
      out.edits.push_back(fmt::format("line {}: GRUB_DISABLE_LINUX_UUID=true -> false (root= by UUID)", i + 1));
    }
  }
  if (!has_linux && !add.empty()) {
    std::vector<std::string> edits;
    std::string value = rewrite_cmdline("", resolve, add, edits);
    lines.push_back("GRUB_CMDLINE_LINUX=\"" + value + "\"");
    out.edits.push_back("added GRUB_CMDLINE_LINUX=\"" + value + "\"");
  }
  out.text = join_lines(lines, ends_with_newline(text) || lines.size() > split_lines(text).size());
  return out;
}

Edited rewrite_grub_cfg(std::string_view text, const DeviceResolver& resolve, const std::vector<std::string>& add) {
  std::vector<std::string> lines = split_lines(text);
  Edited out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::string> words = split_words(lines[i]);
    if (!is_kernel_line(words)) {
      continue;
    }
    std::size_t indent = lines[i].find_first_not_of(" \t");
    std::string args = lines[i].substr(field_span(lines[i], 1)->second);
    std::vector<std::string> edits;
    std::string updated = rewrite_cmdline(args, resolve, add, edits);
    if (edits.empty()) {
      continue;
    }
    lines[i] = lines[i].substr(0, indent) + words[0] + " " + words[1] + (updated.empty() ? "" : " " + updated);
    for (const std::string& e : edits) {
      out.edits.push_back(fmt::format("line {}: {}", i + 1, e));
    }
  }
  out.text = join_lines(lines, ends_with_newline(text));
  return out;
}

Edited rewrite_bls_entry(std::string_view text, const DeviceResolver& resolve, const std::vector<std::string>& add) {
  std::vector<std::string> lines = split_lines(text);
  Edited out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::string> words = split_words(lines[i]);
    if (words.empty() || words[0] != "options") {
      continue;
    }
    std::string args = lines[i].substr(field_span(lines[i], 0)->second);
    std::vector<std::string> edits;
    std::string updated = rewrite_cmdline(args, resolve, add, edits);
    if (!edits.empty()) {
      lines[i] = "options " + updated;
      for (const std::string& e : edits) {
        out.edits.push_back(fmt::format("line {}: {}", i + 1, e));
      }
    }
  }
  out.text = join_lines(lines, ends_with_newline(text));
  return out;
}

Edited rewrite_resume_conf(std::string_view text, const DeviceResolver& resolve) {
  std::vector<std::string> lines = split_lines(text);
  Edited out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::optional<Assignment> a = parse_assignment(lines[i], "RESUME");
    if (!a) {
      continue;
    }
    if (std::optional<std::string> stable = resolve(a->value); stable && *stable != a->value) {
      out.edits.push_back(fmt::format("line {}: RESUME={} -> {}", i + 1, a->value, *stable));
      a->value = *stable;
      lines[i] = format_assignment(*a);
    }
  }
  out.text = join_lines(lines, ends_with_newline(text));
  return out;
}

std::vector<std::string> grub_cfg_cmdlines(std::string_view text) {
  std::vector<std::string> out;
  for (const std::string& line : split_lines(text)) {
    std::vector<std::string> words = split_words(line);
    if (is_kernel_line(words)) {
      out.push_back(line.substr(field_span(line, 1)->second));
    }
  }
  return out;
}

std::string cmdline_value(std::string_view cmdline, std::string_view key) {
  for (const std::string& w : split_words(cmdline)) {
    if (key_of(w) == key && w.size() > key.size()) {
      return w.substr(key.size() + 1);
    }
  }
  return {};
}

}  // namespace utsushi::guest
