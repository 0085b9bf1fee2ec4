#pragma once
// The one zstd decompression loop of utsushi (qcow2 zstd clusters, livemig's
// streamed batches, p2v's chunks, v2p's served ranges): decompresses into a
// buffer whose size the caller knows, and refuses input that decodes to fewer
// or more bytes. And the one whole-frame compressor (p2v's chunks, v2p's
// served ranges).

#include <zstd.h>

#include <cstdint>
#include <span>
#include <vector>

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

// Appends one zstd frame of `in` to `out`, compressed through `ctx` (the
// caller sets its level; it is reused, so its parameters stay). Errc::internal
// when zstd fails (it does not for valid arguments).
[[nodiscard]] Result<void> zstd_compress_append(ZSTD_CCtx* ctx, std::span<const std::uint8_t> in,
                                                std::vector<std::uint8_t>& out);

}  // namespace utsushi
