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

}  // namespace utsushi
