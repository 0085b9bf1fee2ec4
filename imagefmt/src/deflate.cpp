#include "deflate.h"

#include <zlib.h>

#include <string>

namespace utsushi::imagefmt {
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

}  // namespace utsushi::imagefmt
