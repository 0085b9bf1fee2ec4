#include "utsushi/common/link/frame.h"

#include <xxhash.h>

#include <fmt/core.h>

namespace utsushi::link {

namespace fo = frame_offset;

void encode_frame_header(Bytes& out, std::uint8_t type, std::uint16_t flags, std::uint64_t seq,
                         std::span<const std::uint8_t> payload, std::uint32_t raw_len) {
  std::size_t start = out.size();
  out.resize(start + k_frame_header);
  std::uint8_t* h = out.data() + start;
  store_be32(h + fo::magic, k_frame_magic);
  h[fo::version] = k_link_version;
  h[fo::type] = type;
  store_be16(h + fo::flags, flags);
  store_be64(h + fo::seq, seq);
  store_be32(h + fo::payload_len, static_cast<std::uint32_t>(payload.size()));
  store_be32(h + fo::raw_len, raw_len);
  store_be64(h + fo::payload_hash, XXH3_64bits(payload.data(), payload.size()));
  store_be64(h + fo::header_hash, XXH3_64bits(h, fo::header_hash));
}

Result<FrameHeader> decode_frame_header(std::span<const std::uint8_t, k_frame_header> b, std::uint32_t max_payload) {
  const std::uint8_t* h = b.data();
  if (load_be32(h + fo::magic) != k_frame_magic) {
    return fail(Errc::corruption,
                fmt::format("link frame: bad magic {:#010x} (not a utsushi peer?)", load_be32(h + fo::magic)));
  }
  if (XXH3_64bits(h, fo::header_hash) != load_be64(h + fo::header_hash)) {
    return fail(Errc::corruption, "link frame: header checksum mismatch");
  }
  if (h[fo::version] != k_link_version) {
    return fail(Errc::not_supported,
                fmt::format("link frame: link version {} (this build speaks {})", h[fo::version], k_link_version));
  }
  FrameHeader f;
  f.type.value = h[fo::type];
  f.flags = load_be16(h + fo::flags);
  f.seq = load_be64(h + fo::seq);
  f.payload_len = load_be32(h + fo::payload_len);
  f.raw_len = load_be32(h + fo::raw_len);
  f.payload_hash = load_be64(h + fo::payload_hash);
  if (f.type.value == 0) {
    return fail(Errc::corruption, "link frame: type 0");
  }
  if ((f.flags & ~k_flag_compressed) != 0) {
    return fail(Errc::corruption, fmt::format("link frame: unknown flags {:#x}", f.flags));
  }
  std::uint32_t limit = std::min(max_payload, k_max_frame_payload);
  if (f.payload_len > limit || f.raw_len > k_max_frame_payload) {
    return fail(Errc::corruption,
                fmt::format("link frame: length {} / {} over the limit of {} bytes", f.payload_len, f.raw_len, limit));
  }
  return f;
}

Result<void> check_frame_payload(const FrameHeader& h, std::span<const std::uint8_t> payload) {
  if (payload.size() != h.payload_len || XXH3_64bits(payload.data(), payload.size()) != h.payload_hash) {
    return fail(Errc::corruption, fmt::format("link frame {}: payload checksum mismatch", h.seq));
  }
  return {};
}

}  // namespace utsushi::link
