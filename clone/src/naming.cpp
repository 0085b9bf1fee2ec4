#include "utsushi/clone/naming.h"

#include <arpa/inet.h>
#include <fnmatch.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "utsushi/guest/identity_edit.h"
#include "utsushi/guest/network_address.h"

namespace utsushi::clone {
namespace {

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
}

std::uint32_t ipv4_of(const std::string& text) {
  in_addr a{};
  ::inet_pton(AF_INET, text.c_str(), &a);
  return ntohl(a.s_addr);
}

std::string ipv4_text(std::uint32_t v) {
  return fmt::format("{}.{}.{}.{}", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

}  // namespace

Result<std::string> expand_pattern(std::string_view pattern, unsigned n, std::string_view name) {
  try {
    return fmt::format(fmt::runtime(pattern), fmt::arg("n", n), fmt::arg("name", name));
  } catch (const fmt::format_error& e) {
    return fail(Errc::invalid_argument, fmt::format("name pattern '{}': {} (use {{n}}, {{n:02}} or {{name}})", pattern,
                                                    e.what()));
  }
}

Result<std::vector<std::string>> clone_names(const std::vector<std::string>& names, unsigned count,
                                             std::string_view pattern) {
  if (names.empty() == (count == 0)) {
    return fail(Errc::invalid_argument, "give either --count N or --names a,b,c");
  }
  std::vector<std::string> out = names;
  for (unsigned n = 1; n <= count; ++n) {
    out.push_back(UTSUSHI_TRY(expand_pattern(pattern, n)));
  }
  std::vector<std::string> sorted = out;
  std::sort(sorted.begin(), sorted.end());
  if (auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end()) {
    return fail(Errc::invalid_argument, fmt::format("the clone name '{}' repeats (does the pattern use {{n}}?)", *dup));
  }
  for (const std::string& n : out) {
    UTSUSHI_TRY(check_clone_name(n));
  }
  return out;
}

Result<void> check_clone_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.' || name.front() == '-' ||
      !std::all_of(name.begin(), name.end(), name_char)) {
    return fail(Errc::invalid_argument,
                fmt::format("'{}' is not a clone name: 1-64 of A-Z a-z 0-9 . _ -, not starting with . or -", name));
  }
  return {};
}

Result<void> check_hostname(std::string_view name) {
  auto bad = [&](std::string_view why) {
    return fail(Errc::invalid_argument, fmt::format("'{}' is not a host name: {}", name, why));
  };
  if (name.empty() || name.size() > 253) {
    return bad("1-253 characters");
  }
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) {
      return bad("each dot-separated label has 1-63 characters");
    }
    if (label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-'; })) {
      return bad("labels are letters, digits and '-' (not first or last)");
    }
    if (dot == std::string_view::npos) {
      break;
    }
    start = dot + 1;
  }
  return {};
}

bool matches(std::string_view pattern, std::string_view name) {
  return ::fnmatch(std::string(pattern).c_str(), std::string(name).c_str(), 0) == 0;
}

Result<std::vector<std::string>> address_range(std::string_view first, std::size_t count, std::string_view gateway) {
  std::string address;
  int prefix = 0;
  if (!guest::split_cidr(first, address, prefix) || prefix > 30) {
    return fail(Errc::invalid_argument,
                fmt::format("--ip {}: give the first address with its prefix, e.g. 10.0.0.10/24 (IPv4, /30 at most)", first));
  }
  std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  std::uint32_t base = ipv4_of(address);
  std::uint32_t network = base & mask, broadcast = network | ~mask;
  if (base == network || base == broadcast) {
    return fail(Errc::invalid_argument, fmt::format("--ip {}: that is the subnet's {} address", first,
                                                    base == network ? "network" : "broadcast"));
  }
  std::uint64_t fit = static_cast<std::uint64_t>(broadcast) - base;  // base .. broadcast-1
  if (count > fit) {
    return fail(Errc::invalid_argument,
                fmt::format("--ip {}: the range is too small: {}/{} has {} host address{} from {} on, and {} clones "
                            "need one each",
                            first, ipv4_text(network), prefix, fit, fit == 1 ? "" : "es", address, count));
  }
  if (!gateway.empty()) {
    std::uint32_t gw = ipv4_of(std::string(gateway));
    if (gw >= base && static_cast<std::uint64_t>(gw) - base < count) {
      return fail(Errc::invalid_argument,
                  fmt::format("--ip {}: the gateway {} is inside the range of {} addresses; start the range after it",
                              first, gateway, count));
    }
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(fmt::format("{}/{}", ipv4_text(base + static_cast<std::uint32_t>(i)), prefix));
  }
  return out;
}

std::vector<std::string> new_macs(std::size_t count, const std::set<std::string>& in_use) {
  std::vector<std::string> out;
  std::set<std::string> taken = in_use;
  while (out.size() < count) {
    std::vector<std::uint8_t> b = guest::random_bytes(3);
    std::string mac = fmt::format("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
    if (taken.insert(mac).second) {
      out.push_back(mac);
    }
  }
  return out;
}

}  // namespace utsushi::clone
