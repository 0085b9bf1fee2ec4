#pragma once
// The one zstd decompression loop of utsushi (qcow2 zstd clusters, livemig's
// streamed batches, p2v's chunks): decompresses into a buffer whose size the
// caller knows, and refuses input that decodes to fewer or more bytes.

#include <zstd.h>

#include <cstdint>
#include <span>

#include "utsushi/common/error.h"

namespace utsushi {

enum class ZstdInput {
  whole,   // every input byte belongs to the output (one or more frames, or streaming blocks)
  prefix,  // the output ends inside the input; trailing bytes (padding) are ignored
};

// Fills all of `out` from `in` through `ctx` (whose session state the caller
// owns: reset it for independent frames, keep it for a stream cut into
// blocks). Errc::corruption when zstd reports an error, when `in` ends before
// `out` is full ("truncated"), or (ZstdInput::whole) when `in` holds more.
[[nodiscard]] Result<void> zstd_decompress_exact(ZSTD_DCtx* ctx, std::span<const std::uint8_t> in,
                                                 std::span<std::uint8_t> out, ZstdInput input);

}  // namespace utsushi
