#include "utsushi/p2v/wire_format.h"

#include <xxhash.h>

#include <algorithm>

#include "utsushi/common/net.h"
#include "utsushi/common/endian.h"

namespace utsushi::p2v::wire {

Result<void> send_frame(int fd, MsgType type, std::span<const std::uint8_t> payload) {
  if (payload.size() > k_max_payload) {
    return fail(Errc::internal, "frame payload too large");
  }
  std::uint8_t h[k_frame_header] = {};
  store_le32(h, k_magic);
  h[4] = static_cast<std::uint8_t>(type);
  store_le32(h + 8, static_cast<std::uint32_t>(payload.size()));
  UTSUSHI_TRY(net::send_all(fd, h));
  return net::send_all(fd, payload);
}

Result<void> send_frame(int fd, MsgType type, std::string_view text) {
  return send_frame(fd, type, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

Result<Frame> recv_frame(int fd) {
  std::uint8_t h[k_frame_header];
  UTSUSHI_TRY(net::recv_all(fd, h));
  if (load_le32(h) != k_magic) {
    return fail(Errc::corruption, "protocol error: bad frame magic (not a p2v peer?)");
  }
  std::uint32_t len = load_le32(h + 8);
  if (len > k_max_payload) {
    return fail(Errc::corruption, "protocol error: frame too large");
  }
  Frame f;
  f.type = static_cast<MsgType>(h[4]);
  f.payload.resize(len);
  UTSUSHI_TRY(net::recv_all(fd, f.payload));
  return f;
}

auth::Mac auth_mac(std::string_view token, std::string_view label, std::span<const std::uint8_t> a,
                   std::span<const std::uint8_t> b) {
  return auth::hmac_sha256(token, {auth::as_bytes(label), a, b});
}

std::vector<ChunkRef> make_chunks(const disk::ByteRanges& used) {
  std::vector<ChunkRef> out;
  for (const disk::ByteRange& r : used.ranges()) {
    std::uint64_t off = r.offset;
    while (off < r.end()) {
      std::uint64_t boundary = (off / k_chunk_size + 1) * k_chunk_size;
      std::uint64_t end = std::min(r.end(), boundary);
      out.push_back({off, static_cast<std::uint32_t>(end - off)});
      off = end;
    }
  }
  return out;
}

std::uint64_t plan_id(std::uint64_t disk_size, const std::vector<ChunkRef>& chunks) {
  XXH64_state_t* s = XXH64_createState();
  XXH64_reset(s, 0);
  XXH64_update(s, &disk_size, sizeof disk_size);
  for (const ChunkRef& c : chunks) {
    XXH64_update(s, &c.offset, sizeof c.offset);
    XXH64_update(s, &c.length, sizeof c.length);
  }
  std::uint64_t h = XXH64_digest(s);
  XXH64_freeState(s);
  return h;
}

}  // namespace utsushi::p2v::wire
