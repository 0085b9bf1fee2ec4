#include "utsushi/common/zstd_stream.h"

#include <fmt/core.h>

namespace utsushi {

Result<void> zstd_decompress_exact(ZSTD_DCtx* ctx, std::span<const std::uint8_t> in, std::span<std::uint8_t> out,
                                   ZstdInput input) {
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  for (;;) {
    if (ob.pos == ob.size && (input == ZstdInput::prefix || ib.pos == ib.size)) {
      return {};
    }
    std::size_t in_before = ib.pos;
    std::size_t out_before = ob.pos;
    std::size_t r = ZSTD_decompressStream(ctx, &ob, &ib);
    if (ZSTD_isError(r)) {
      return fail(Errc::corruption, fmt::format("zstd: {}", ZSTD_getErrorName(r)));
    }
    if (ib.pos == in_before && ob.pos == out_before) {
      if (ob.pos < ob.size) {
        return fail(Errc::corruption, fmt::format("zstd: truncated: {} of {} bytes", ob.pos, ob.size));
      }
      return fail(Errc::corruption, fmt::format("zstd: more data than the {} bytes announced", ob.size));
    }
  }
}

Result<void> zstd_compress_append(ZSTD_CCtx* ctx, std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) {
  const std::size_t at = out.size(), bound = ZSTD_compressBound(in.size());
  out.resize(at + bound);
  std::size_t z = ZSTD_compress2(ctx, out.data() + at, bound, in.data(), in.size());
  if (ZSTD_isError(z)) {
    out.resize(at);
    return fail(Errc::internal, fmt::format("zstd: {}", ZSTD_getErrorName(z)));
  }
  out.resize(at + z);
  return {};
}

}  // namespace utsushi
