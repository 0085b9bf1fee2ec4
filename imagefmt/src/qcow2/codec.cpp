#include "codec.h"

#include <zlib.h>
#include <zstd.h>

#include "utsushi/common/handles.h"

namespace utsushi::imagefmt::qcow2 {
namespace {

// Per-thread inflate state, reset for every stream.
struct Inflater {
  z_stream z{};
  int bits = 0;
  bool ready = false;
  ~Inflater() {
    if (ready) {
      inflateEnd(&z);
    }
  }
  bool prepare(int window_bits) {
    if (ready && bits == window_bits) {
      return inflateReset(&z) == Z_OK;
    }
    if (ready) {
      inflateEnd(&z);
      ready = false;
    }
    z = z_stream{};
    if (inflateInit2(&z, window_bits) != Z_OK) {
      return false;
    }
    bits = window_bits;
    ready = true;
    return true;
  }
};

struct Deflater {
  z_stream z{};
  int bits = 0;
  int level = 0;
  bool ready = false;
  ~Deflater() {
    if (ready) {
      deflateEnd(&z);
    }
  }
  bool prepare(int window_bits, int lvl) {
    if (ready && bits == window_bits && level == lvl) {
      return deflateReset(&z) == Z_OK;
    }
    if (ready) {
      deflateEnd(&z);
      ready = false;
    }
    z = z_stream{};
    if (deflateInit2(&z, lvl, Z_DEFLATED, window_bits, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
      return false;
    }
    bits = window_bits;
    level = lvl;
    ready = true;
    return true;
  }
};

thread_local Inflater t_inflater;
thread_local Deflater t_deflater;
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
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  while (ob.pos < ob.size) {
    std::size_t in_before = ib.pos;
    std::size_t out_before = ob.pos;
    std::size_t r = ZSTD_decompressStream(t_dctx.get(), &ob, &ib);
    if (ZSTD_isError(r)) {
      return fail(Errc::corruption, std::string("qcow2: bad zstd cluster: ") + ZSTD_getErrorName(r));
    }
    if (ib.pos == in_before && ob.pos == out_before) {
      return fail(Errc::corruption, "qcow2: truncated zstd cluster");
    }
  }
  return {};
}

}  // namespace

std::optional<std::size_t> deflate_buffer(std::span<const std::uint8_t> in, std::span<std::uint8_t> out,
                                          int window_bits, int level) {
  if (!t_deflater.prepare(window_bits, level)) {
    return std::nullopt;
  }
  z_stream& z = t_deflater.z;
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  int r = deflate(&z, Z_FINISH);
  if (r != Z_STREAM_END) {
    return std::nullopt;
  }
  return out.size() - z.avail_out;
}

Result<std::size_t> inflate_buffer(std::span<const std::uint8_t> in, std::span<std::uint8_t> out, int window_bits) {
  if (!t_inflater.prepare(window_bits)) {
    return fail(Errc::internal, "cannot initialise zlib");
  }
  z_stream& z = t_inflater.z;
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  int r = inflate(&z, Z_FINISH);
  if (r == Z_STREAM_END || (r == Z_BUF_ERROR && z.avail_out == 0)) {
    return out.size() - z.avail_out;
  }
  return fail(Errc::corruption, std::string("invalid deflate stream") + (z.msg ? std::string(": ") + z.msg : ""));
}

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
