#pragma once
// The p2v network protocol (client: client.h, server: server.h): protocol
// "p2v", version k_protocol_version, on utsushi's one link layer
// (common/link: frames with sequence numbers and checksums, the token
// handshake, the server's accept loop). The token never crosses the wire;
// the server creates no file before the handshake succeeds.
//
// Session, after the handshake (any number of disks, one after another):
//   C->S BEGIN   JSON {client, name, size, format, compress, chunk_size, chunks, plan_id}
//                client: the capturing host's name (or capture --name); name:
//                the image's file name; the server writes DIR/CLIENT/NAME
//   S->C STATE   u64 LE chunk count, then a bitmap (bit i = chunk i already held)
//   C->S CHUNK   index u64, offset u64, length u32, xxh64 u64 (of the plain
//                bytes; all LE), then one zstd frame
//   C->S DONE    (empty)
//   S->C RESULT  JSON {status: "ok"|"resend"|"error", resend: [indexes], path, message}
//        "resend" lists chunks that arrived damaged or never arrived; the
//        client sends them and DONE again (a bounded number of rounds).
//   The link's abort, either direction, carries a reason; the sender closes.
// A CHUNK whose frame arrives damaged (the link's payload checksum, or the
// chunk's own XXH64) is asked for again; any other damaged or malformed
// message ends the session.
// Chunks are the disk's used ranges cut at k_chunk_size; the plan_id (XXH64
// of the size and every chunk's offset and length) lets a resumed session
// reuse what the server holds only when the plan is the same.
// Every message decodes into a Result: a malformed or hostile one is an
// error (corruption), never an exception.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/endian.h"
#include "utsushi/common/link/handshake.h"
#include "utsushi/disk/byte_ranges.h"

namespace utsushi::p2v::wire {

inline constexpr std::uint16_t k_protocol_version = 2;  // 1: its own frames and handshake
inline constexpr link::Protocol k_protocol{"p2v", k_protocol_version};
inline constexpr std::uint64_t k_chunk_size = 4u << 20;
inline constexpr std::uint32_t k_max_payload = 8u << 20;  // > ZSTD_compressBound(4 MiB) + chunk header
inline constexpr std::size_t k_chunk_header = 28;         // index, offset, length, xxh64
inline constexpr std::size_t k_max_name = 128;            // client and image names, bytes
// A plan of more chunks is refused (64 TiB of 4 MiB chunks; the server keeps
// 9 bytes of tables per chunk in memory and 16 in its journal).
inline constexpr std::uint64_t k_max_chunks = std::uint64_t{1} << 24;
inline constexpr std::uint64_t k_max_disk_size = std::uint64_t{1} << 50;

enum class MsgType : std::uint8_t { begin = 1, state = 2, chunk = 3, done = 4, result = 5 };

// A client or image name: 1..k_max_name bytes, no control character, no
// path separator, not starting with '.'. invalid_argument naming `what`.
[[nodiscard]] Result<void> check_name(std::string_view name, std::string_view what);

struct Begin {
  std::string client;
  std::string name;
  std::uint64_t size = 0;
  std::string format;
  bool compress = false;
  std::uint64_t chunks = 0;
  std::string plan_id;
};
[[nodiscard]] Bytes encode_begin(const Begin& b);
// Checks names (check_name), the chunk size, and the plan's bounds (chunks
// <= size/512 + 1, <= k_max_chunks; size <= k_max_disk_size).
[[nodiscard]] Result<Begin> decode_begin(std::span<const std::uint8_t> payload);

[[nodiscard]] Bytes encode_state(const std::vector<bool>& held);
// The bitmap of a plan of `chunks` chunks.
[[nodiscard]] Result<std::vector<bool>> decode_state(std::span<const std::uint8_t> payload, std::uint64_t chunks);

struct ChunkHeader {
  std::uint64_t index = 0;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  std::uint64_t hash = 0;  // XXH64 of the plain bytes
};
void encode_chunk_header(Bytes& out, const ChunkHeader& h);
struct ChunkView {
  ChunkHeader header;
  std::span<const std::uint8_t> compressed;
};
// Checks the header against the plan: index < chunks, 0 < length <=
// k_chunk_size, offset + length <= disk_size.
[[nodiscard]] Result<ChunkView> decode_chunk(std::span<const std::uint8_t> payload, std::uint64_t chunks,
                                             std::uint64_t disk_size);

struct Outcome {
  enum class Status { ok, resend, error } status = Status::error;
  std::vector<std::uint64_t> resend;
  std::string path;
  std::string message;
};
[[nodiscard]] Bytes encode_result(const Outcome& r);
// Every resend index < chunks.
[[nodiscard]] Result<Outcome> decode_result(std::span<const std::uint8_t> payload, std::uint64_t chunks);

struct ChunkRef {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
};
// The chunks of a plan: used ranges cut at k_chunk_size boundaries of the disk.
std::vector<ChunkRef> make_chunks(const disk::ByteRanges& used);
std::uint64_t plan_id(std::uint64_t disk_size, const std::vector<ChunkRef>& chunks);

}  // namespace utsushi::p2v::wire
