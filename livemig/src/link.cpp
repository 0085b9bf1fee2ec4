#include "utsushi/livemig/link.h"

#include <fmt/core.h>

#include <cstdlib>
#include <string>

namespace utsushi::livemig {

Result<std::uint64_t> parse_rate(std::string_view text) {
  std::string s(text);
  for (const char* suffix : {"/s", "ps"}) {
    if (s.size() > 2 && s.ends_with(suffix)) {
      s.resize(s.size() - 2);
    }
  }
  if (!s.empty() && (s.back() == 'B' || s.back() == 'b')) {
    s.pop_back();
  }
  if (!s.empty() && s.back() == 'i') {
    s.pop_back();
  }
  double mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k': case 'K': mult = 1024.0; break;
      case 'm': case 'M': mult = 1024.0 * 1024; break;
      case 'g': case 'G': mult = 1024.0 * 1024 * 1024; break;
      default: break;
    }
    if (mult != 1) {
      s.pop_back();
    }
  }
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !(v > 0) || v * mult > 1e15) {
    return fail(Errc::invalid_argument, fmt::format("bad rate '{}' (e.g. 32M, 500K, 1G)", text));
  }
  return static_cast<std::uint64_t>(v * mult);
}

}  // namespace utsushi::livemig
