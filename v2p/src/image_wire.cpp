#include "utsushi/v2p/image_wire.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "utsushi/common/link/json_message.h"

namespace utsushi::v2p::wire {
namespace {

[[nodiscard]] Result<void> check_range(std::uint64_t offset, std::uint64_t length, std::uint64_t image_size,
                                       std::string_view what) {
  if (length == 0 || offset > image_size || length > image_size - offset) {
    return fail(Errc::corruption, fmt::format("v2p-image {}: range {}+{} is outside the {}-byte image", what, offset,
                                              length, image_size));
  }
  return {};
}

[[nodiscard]] Result<void> check_done(const Cursor& c, std::string_view what) {
  if (!c.done()) {
    return fail(Errc::corruption, fmt::format("v2p-image {}: {} trailing bytes", what, c.remaining()));
  }
  return {};
}

}  // namespace

Bytes encode_info(const ImageInfo& info) {
  return link::json_payload(
      {{"size", info.size}, {"format", info.format}, {"identity", info.identity}, {"name", info.name}});
}

Result<ImageInfo> decode_info(std::span<const std::uint8_t> payload) {
  auto j = UTSUSHI_TRY(link::parse_json_object(payload, "v2p-image INFO"));
  ImageInfo info;
  info.size = UTSUSHI_TRY(j.u64("size"));
  info.format = UTSUSHI_TRY(j.string("format"));
  info.identity = UTSUSHI_TRY(j.string("identity"));
  info.name = UTSUSHI_TRY(j.string_or("name", ""));
  if (info.size == 0 || info.identity.empty() || info.format.empty()) {
    return fail(Errc::corruption, "v2p-image INFO: empty size, format or identity");
  }
  return info;
}

Bytes encode_read(const ReadRequest& r) {
  Bytes out;
  put_be64(out, r.offset);
  put_be32(out, r.length);
  return out;
}

Result<ReadRequest> decode_read(std::span<const std::uint8_t> payload, std::uint64_t image_size) {
  Cursor c(payload, "v2p-image READ");
  ReadRequest r;
  r.offset = UTSUSHI_TRY(c.be64());
  r.length = UTSUSHI_TRY(c.be32());
  UTSUSHI_TRY(check_done(c, "READ"));
  if (r.length > k_max_read) {
    return fail(Errc::corruption, fmt::format("v2p-image READ: {} bytes asked, at most {}", r.length, k_max_read));
  }
  UTSUSHI_TRY(check_range(r.offset, r.length, image_size, "READ"));
  return r;
}

Bytes encode_extents_request(const ExtentsRequest& r) {
  Bytes out;
  put_be64(out, r.offset);
  put_be64(out, r.length);
  return out;
}

Result<ExtentsRequest> decode_extents_request(std::span<const std::uint8_t> payload, std::uint64_t image_size) {
  Cursor c(payload, "v2p-image EXTENTS request");
  ExtentsRequest r;
  r.offset = UTSUSHI_TRY(c.be64());
  r.length = UTSUSHI_TRY(c.be64());
  UTSUSHI_TRY(check_done(c, "EXTENTS request"));
  UTSUSHI_TRY(check_range(r.offset, r.length, image_size, "EXTENTS request"));
  return r;
}

Bytes encode_extents(std::span<const imagefmt::Extent> extents) {
  Bytes out;
  out.reserve(4 + extents.size() * k_extent_size);
  put_be32(out, static_cast<std::uint32_t>(extents.size()));
  for (const imagefmt::Extent& e : extents) {
    put_be64(out, e.offset);
    put_be64(out, e.length);
    put_u8(out, static_cast<std::uint8_t>(e.type));
  }
  return out;
}

Result<std::vector<imagefmt::Extent>> decode_extents(std::span<const std::uint8_t> payload, const ExtentsRequest& asked,
                                                     std::uint64_t image_size) {
  Cursor c(payload, "v2p-image EXTENTS");
  const std::uint32_t n = UTSUSHI_TRY(c.be32());
  if (n == 0 || n > k_max_extents || c.remaining() != std::size_t{n} * k_extent_size) {
    return fail(Errc::corruption, fmt::format("v2p-image EXTENTS: {} extents in {} bytes", n, c.remaining()));
  }
  std::vector<imagefmt::Extent> out;
  out.reserve(n);
  std::uint64_t next = asked.offset;
  for (std::uint32_t i = 0; i < n; ++i) {
    imagefmt::Extent e;
    e.offset = UTSUSHI_TRY(c.be64());
    e.length = UTSUSHI_TRY(c.be64());
    const std::uint8_t type = UTSUSHI_TRY(c.u8());
    if (type > static_cast<std::uint8_t>(imagefmt::ExtentType::hole)) {
      return fail(Errc::corruption, fmt::format("v2p-image EXTENTS: unknown extent type {}", type));
    }
    e.type = static_cast<imagefmt::ExtentType>(type);
    if (e.offset != next) {
      return fail(Errc::corruption,
                  fmt::format("v2p-image EXTENTS: extent {} starts at {}, not at {}", i, e.offset, next));
    }
    UTSUSHI_TRY(check_range(e.offset, e.length, image_size, "EXTENTS"));
    next = e.offset + e.length;
    out.push_back(e);
  }
  return out;
}

Bytes encode_error(std::string_view message) { return link::json_payload({{"message", message}}); }

Result<std::string> decode_error(std::span<const std::uint8_t> payload) {
  auto j = UTSUSHI_TRY(link::parse_json_object(payload, "v2p-image ERROR"));
  return j.string("message");
}

}  // namespace utsushi::v2p::wire
