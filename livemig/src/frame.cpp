#include "utsushi/livemig/frame.h"

#include <xxhash.h>

#include <fmt/core.h>

namespace utsushi::livemig {

bool known_frame_type(std::uint8_t type) noexcept {
  return (type >= static_cast<std::uint8_t>(FrameType::hello) && type <= static_cast<std::uint8_t>(FrameType::abort)) ||
         (type >= static_cast<std::uint8_t>(FrameType::mode) && type <= static_cast<std::uint8_t>(FrameType::running)) ||
         type == static_cast<std::uint8_t>(FrameType::domain_xml) ||
         type == static_cast<std::uint8_t>(FrameType::domain_ready);
}

void encode_frame_header(Bytes& out, FrameType type, std::uint16_t flags, std::uint64_t seq,
                         std::span<const std::uint8_t> payload, std::uint32_t raw_len) {
  std::size_t start = out.size();
  put_be32(out, k_frame_magic);
  put_u8(out, k_frame_version);
  put_u8(out, static_cast<std::uint8_t>(type));
  put_be16(out, flags);
  put_be64(out, seq);
  put_be32(out, static_cast<std::uint32_t>(payload.size()));
  put_be32(out, raw_len);
  put_be64(out, XXH3_64bits(payload.data(), payload.size()));
  put_be64(out, XXH3_64bits(out.data() + start, 32));
}

Result<FrameHeader> decode_frame_header(std::span<const std::uint8_t, k_frame_header> b) {
  if (load_be32(b.data()) != k_frame_magic) {
    return fail(Errc::corruption, fmt::format("livemig frame: bad magic {:#010x}", load_be32(b.data())));
  }
  if (XXH3_64bits(b.data(), 32) != load_be64(b.data() + 32)) {
    return fail(Errc::corruption, "livemig frame: header checksum mismatch");
  }
  if (b[4] != k_frame_version) {
    return fail(Errc::not_supported, fmt::format("livemig frame: protocol version {} (want {})", b[4], k_frame_version));
  }
  FrameHeader h;
  if (!known_frame_type(b[5])) {
    return fail(Errc::corruption, fmt::format("livemig frame: unknown type {}", b[5]));
  }
  h.type = static_cast<FrameType>(b[5]);
  h.flags = load_be16(b.data() + 6);
  h.seq = load_be64(b.data() + 8);
  h.payload_len = load_be32(b.data() + 16);
  h.raw_len = load_be32(b.data() + 20);
  h.payload_hash = load_be64(b.data() + 24);
  if (h.payload_len > k_max_payload || h.raw_len > k_max_payload) {
    return fail(Errc::corruption, fmt::format("livemig frame: length {} / {} too large", h.payload_len, h.raw_len));
  }
  if ((h.flags & ~k_frame_zstd) != 0) {
    return fail(Errc::corruption, fmt::format("livemig frame: unknown flags {:#x}", h.flags));
  }
  return h;
}

Result<void> check_frame_payload(const FrameHeader& h, std::span<const std::uint8_t> payload) {
  if (payload.size() != h.payload_len || XXH3_64bits(payload.data(), payload.size()) != h.payload_hash) {
    return fail(Errc::corruption, fmt::format("livemig frame {}: payload checksum mismatch", h.seq));
  }
  return {};
}

}  // namespace utsushi::livemig
