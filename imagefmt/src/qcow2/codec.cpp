#include "codec.h"

#include <zstd.h>

#include "../deflate.h"
#include "utsushi/common/handles.h"
#include "utsushi/common/zstd_stream.h"

namespace utsushi::imagefmt::qcow2 {
namespace {

thread_local ZstdDCtx t_dctx;
thread_local ZstdCCtx t_cctx;

[[nodiscard]] Result<void> decompress_zstd(std::span<const std::uint8_t> in, std::span<std::uint8_t> out) {
  if (!t_dctx) {
    t_dctx.reset(ZSTD_createDCtx());
    if (!t_dctx) {
      return fail(Errc::internal, "qcow2: cannot allocate a zstd context");
    }
  }
  ZSTD_DCtx_reset(t_dctx.get(), ZSTD_reset_session_only);
  if (auto r = zstd_decompress_exact(t_dctx.get(), in, out, ZstdInput::prefix); !r) {
    return std::unexpected(std::move(r).error().with_context("qcow2: bad zstd cluster"));
  }
  return {};
}

}  // namespace

Result<void> decompress_cluster(CompressionType type, std::span<const std::uint8_t> in, std::span<std::uint8_t> out) {
  if (type == CompressionType::zstd) {
    return decompress_zstd(in, out);
  }
  auto n = inflate_buffer(in, out, -15);
  if (!n) {
    return std::unexpected(std::move(n).error().with_context("qcow2: compressed cluster"));
  }
  if (*n != out.size()) {
    return fail(Errc::corruption, "qcow2: compressed cluster decodes to " + std::to_string(*n) + " bytes, not " +
                                      std::to_string(out.size()));
  }
  return {};
}

std::optional<std::size_t> compress_cluster(CompressionType type, int level, std::span<const std::uint8_t> in,
                                            std::span<std::uint8_t> out) {
  if (type == CompressionType::zlib) {
    return deflate_buffer(in, out, -12, level);
  }
  if (!t_cctx) {
    t_cctx.reset(ZSTD_createCCtx());
    if (!t_cctx) {
      return std::nullopt;
    }
  }
  std::size_t r = ZSTD_compressCCtx(t_cctx.get(), out.data(), out.size(), in.data(), in.size(), level);
  if (ZSTD_isError(r)) {
    return std::nullopt;
  }
  return r;
}

}  // namespace utsushi::imagefmt::qcow2
