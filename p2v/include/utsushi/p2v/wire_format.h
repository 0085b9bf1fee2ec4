#pragma once
// The p2v network protocol (client: client.h, server: server.h), over one TCP
// connection. Every message is a frame:
//   magic  u32 LE  0x4D563250 ("P2VM")
//   type   u8      MsgType
//   pad    u8[3]   zero
//   length u32 LE  payload bytes (at most k_max_payload)
//   payload
// Session:
//   S->C HELLO   version u32, server nonce [32]
//   C->S AUTH    client nonce [32], HMAC-SHA256(token, "p2v-client" | server nonce | client nonce)
//   S->C AUTH_OK HMAC-SHA256(token, "p2v-server" | client nonce | server nonce)   (or ERROR, then close)
//        The token itself never crosses the wire; both sides prove they hold it.
//        The server creates no file before AUTH succeeds.
//   C->S BEGIN   JSON {name, size, format, compress, verify, chunk_size, chunks, plan_id}
//   S->C STATE   u64 chunk count, then a bitmap (bit i = chunk i already held)
//   C->S CHUNK   index u64, offset u64, length u32, xxh64 u64 (of the plain bytes), zstd frame
//   C->S DONE    (empty)
//   S->C RESULT  JSON {status: "ok"|"resend"|"error", resend: [indexes], path, message}
//        "resend" lists chunks that arrived corrupt or never arrived; the client
//        sends them and DONE again (a bounded number of rounds).
//   ERROR        UTF-8 text, either direction; the sender closes.
// Chunks are the disk's used ranges cut at k_chunk_size; the plan_id (XXH64
// of the size and every chunk's offset and length) lets a resumed session
// reuse what the server holds only when the plan is the same.
// Sockets and addresses are common/net.h's.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "utsushi/common/auth.h"
#include "utsushi/common/fd.h"
#include "utsushi/disk/byte_ranges.h"

namespace utsushi::p2v::wire {

inline constexpr std::uint32_t k_magic = 0x4D563250;
inline constexpr std::uint32_t k_version = 1;
inline constexpr std::size_t k_frame_header = 12;
inline constexpr std::uint64_t k_chunk_size = 4u << 20;
inline constexpr std::uint32_t k_max_payload = 8u << 20;  // > ZSTD_compressBound(4 MiB) + chunk header
inline constexpr std::size_t k_nonce_size = auth::k_nonce_size;
inline constexpr std::size_t k_mac_size = auth::k_mac_size;
inline constexpr std::size_t k_chunk_header = 28;  // index, offset, length, xxh64

enum class MsgType : std::uint8_t {
  hello = 1, auth = 2, auth_ok = 3, begin = 4, state = 5, chunk = 6, done = 7, result = 8, error = 9,
};

struct Frame {
  MsgType type = MsgType::error;
  std::vector<std::uint8_t> payload;
};

// Writes one frame (blocking, whole). unavailable when the peer is gone.
Result<void> send_frame(int fd, MsgType type, std::span<const std::uint8_t> payload);
Result<void> send_frame(int fd, MsgType type, std::string_view text);
// Reads one frame; corruption on a bad magic or oversized payload,
// unavailable when the peer closed or the link failed.
Result<Frame> recv_frame(int fd);

// HMAC-SHA256(token, label | a | b). Nonces, the token rules and the
// constant-time comparison are common/auth.h's.
auth::Mac auth_mac(std::string_view token, std::string_view label, std::span<const std::uint8_t> a,
                   std::span<const std::uint8_t> b);

struct ChunkRef {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
};
// The chunks of a plan: used ranges cut at k_chunk_size boundaries of the disk.
std::vector<ChunkRef> make_chunks(const disk::ByteRanges& used);
std::uint64_t plan_id(std::uint64_t disk_size, const std::vector<ChunkRef>& chunks);

}  // namespace utsushi::p2v::wire
