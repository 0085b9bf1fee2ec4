#pragma once
// Deflate (zlib) helpers of imagefmt's formats: qcow2's zlib clusters (raw
// deflate) and VMDK's compressed grains (zlib wrapper). window_bits as for
// zlib's deflateInit2/inflateInit2: negative = raw deflate, 15 = zlib
// wrapper. Thread-safe (per-thread zlib streams, reset for every call).

#include <cstdint>
#include <optional>
#include <span>

#include "utsushi/common/error.h"

namespace utsushi::imagefmt {

// Compresses all of `in` into `out`; the compressed length, or nothing when
// it does not fit in out.size() bytes (or zlib cannot start).
[[nodiscard]] std::optional<std::size_t> deflate_buffer(std::span<const std::uint8_t> in, std::span<std::uint8_t> out,
                                                        int window_bits, int level);
// Inflates `in` into `out` until the stream ends or `out` is full; the bytes
// written. Errc::corruption for an invalid stream.
[[nodiscard]] Result<std::size_t> inflate_buffer(std::span<const std::uint8_t> in, std::span<std::uint8_t> out,
                                                 int window_bits);

}  // namespace utsushi::imagefmt
