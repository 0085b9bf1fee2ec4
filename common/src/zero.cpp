#include "utsushi/common/zero.h"

#include <cstring>

namespace utsushi {

// Each clone ORs 64-byte blocks as eight 64-bit words; the compiler turns the
// inner loop into 2 (AVX2) or 4 (SSE2) vector ORs. Checking once per block
// keeps the early exit cheap on data that is not zero (the common case).
__attribute__((target_clones("avx2", "default"))) bool is_all_zero(const std::uint8_t* data,
                                                                   std::size_t size) noexcept {
  std::size_t i = 0;
  // Unaligned head: up to the first 8-byte boundary.
  while (i < size && (reinterpret_cast<std::uintptr_t>(data + i) & 7u) != 0) {
    if (data[i++] != 0) {
      return false;
    }
  }
  for (; i + 64 <= size; i += 64) {
    std::uint64_t w[8];
    std::memcpy(w, data + i, 64);
    std::uint64_t acc = 0;
    for (int k = 0; k < 8; ++k) {
      acc |= w[k];
    }
    if (acc != 0) {
      return false;
    }
  }
  for (; i < size; ++i) {
    if (data[i] != 0) {
      return false;
    }
  }
  return true;
}

}  // namespace utsushi
