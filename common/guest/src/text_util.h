#pragma once
// Small text helpers shared by the configuration parsers (private to the
// guest library).
#include <string>
#include <string_view>
#include <vector>

namespace utsushi::guest::detail {

inline bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_blank(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// Whitespace-separated words.
inline std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_blank(s[i])) {
      ++i;
    }
    std::size_t start = i;
    while (i < s.size() && !is_blank(s[i])) {
      ++i;
    }
    if (i > start) {
      out.emplace_back(s.substr(start, i - start));
    }
  }
  return out;
}

}  // namespace utsushi::guest::detail
