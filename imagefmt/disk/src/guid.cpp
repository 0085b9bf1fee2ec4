#include "utsushi/disk/guid.h"

#include <fmt/format.h>

#include <algorithm>

namespace utsushi::disk {
namespace {

constexpr char k_hex[] = "0123456789abcdef";
constexpr std::size_t k_text_size = 36;
constexpr bool is_dash_position(std::size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// Mixed-endian swaps bytes 0-3, 4-5 and 6-7; applying it twice is the identity.
void swap_fields(std::array<std::uint8_t, 16>& b) noexcept {
  std::reverse(b.begin(), b.begin() + 4);
  std::reverse(b.begin() + 4, b.begin() + 6);
  std::reverse(b.begin() + 6, b.begin() + 8);
}

}  // namespace

bool Guid::is_nil() const noexcept {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

std::string Guid::text() const {
  std::string s;
  s.reserve(k_text_size);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      s.push_back('-');
    }
    s.push_back(k_hex[bytes[i] >> 4]);
    s.push_back(k_hex[bytes[i] & 0xF]);
  }
  return s;
}

[[nodiscard]] Result<Guid> parse_guid(std::string_view text) {
  Guid g;
  bool ok = text.size() == k_text_size;
  std::size_t nibble = 0;
  for (std::size_t i = 0; ok && i < text.size(); ++i) {
    if (is_dash_position(i)) {
      ok = text[i] == '-';
      continue;
    }
    int v = hex_value(text[i]);
    ok = v >= 0;
    if (ok) {
      g.bytes[nibble / 2] = static_cast<std::uint8_t>(g.bytes[nibble / 2] | (v << (nibble % 2 == 0 ? 4 : 0)));
      ++nibble;
    }
  }
  if (!ok) {
    return fail(Errc::invalid_argument, fmt::format("'{}' is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", text));
  }
  return g;
}

Guid guid_from_big_endian(std::span<const std::uint8_t, 16> b) noexcept {
  Guid g;
  std::copy(b.begin(), b.end(), g.bytes.begin());
  return g;
}

Guid guid_from_mixed_endian(std::span<const std::uint8_t, 16> b) noexcept {
  Guid g = guid_from_big_endian(b);
  swap_fields(g.bytes);
  return g;
}

void guid_to_mixed_endian(const Guid& g, std::span<std::uint8_t, 16> out) noexcept {
  std::array<std::uint8_t, 16> b = g.bytes;
  swap_fields(b);
  std::copy(b.begin(), b.end(), out.begin());
}

}  // namespace utsushi::disk
