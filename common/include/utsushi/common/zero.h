#pragma once
// is_all_zero: the all-zero test every copier uses to skip writing zeros.
// Vectorised (AVX2 when the CPU has it, SSE2 otherwise, chosen at load time),
// returning early on the first non-zero 64-byte block.

#include <cstddef>
#include <cstdint>
#include <span>

namespace utsushi {

bool is_all_zero(const std::uint8_t* data, std::size_t size) noexcept;
inline bool is_all_zero(std::span<const std::uint8_t> buf) noexcept { return is_all_zero(buf.data(), buf.size()); }

}  // namespace utsushi
