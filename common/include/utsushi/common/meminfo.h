#pragma once
// The kernel's memory figures (/proc/meminfo, proc(5)).
#include <cstdint>
#include <optional>
#include <string_view>

namespace utsushi {

// The field `key` of /proc/meminfo ("MemTotal", "MemAvailable", ...) in
// bytes; nullopt when the file or the field cannot be read.
[[nodiscard]] std::optional<std::uint64_t> meminfo_bytes(std::string_view key);

}  // namespace utsushi
