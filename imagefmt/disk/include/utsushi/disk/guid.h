#pragma once
// GUIDs (UUIDs) in their RFC 4122 text form, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
// and the two byte orders in which disks store them:
//  - big-endian, the bytes in text order (RFC 4122 section 4.1.2): ext2/3/4,
//    XFS and Linux swap UUIDs;
//  - mixed-endian, the first three fields little-endian (UEFI Specification
//    2.10, Appendix A "GUID and Time Formats"): GPT disk, type and partition GUIDs.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "utsushi/common/error.h"

namespace utsushi::disk {

struct Guid {
  std::array<std::uint8_t, 16> bytes{};  // in text order

  bool is_nil() const noexcept;
  // Lower-case text form.
  std::string text() const;
  friend bool operator==(const Guid&, const Guid&) = default;
};

// Parses the text form (either case); invalid_argument otherwise.
[[nodiscard]] Result<Guid> parse_guid(std::string_view text);

Guid guid_from_big_endian(std::span<const std::uint8_t, 16> b) noexcept;
Guid guid_from_mixed_endian(std::span<const std::uint8_t, 16> b) noexcept;
void guid_to_mixed_endian(const Guid& g, std::span<std::uint8_t, 16> out) noexcept;

}  // namespace utsushi::disk
