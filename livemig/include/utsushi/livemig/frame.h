#pragma once
// livemig link frames. Every message between sender and receiver is one frame:
//
//   offset size  field
//   0      4     magic "LMG1" (0x4c4d4731), big-endian
//   4      1     protocol version (2: the receiver's first frame is "mode", and
//                 a held destination ends with ready/go/running; 1 had neither)
//   5      1     type (FrameType)
//   6      2     flags (bit 0: payload is a zstd streaming-flush block)
//   8      8     sequence number (per direction, starting at 0, +1 per frame)
//   16     4     payload length (<= k_max_payload)
//   20     4     raw length: payload length after decompression (<= k_max_payload)
//   24     8     XXH3-64 of the payload
//   32     8     XXH3-64 of bytes 0..31 (so a corrupted length is caught
//                before the receiver waits for a payload that never comes)
//   40     ...   payload
//
// A frame whose magic, version, hashes, lengths or sequence number is wrong is
// Errc::corruption: the migration ends (the source keeps running).

#include <cstdint>
#include <span>

#include "utsushi/common/error.h"
#include "utsushi/livemig/bytes.h"

namespace utsushi::livemig {

inline constexpr std::uint32_t k_frame_magic = 0x4c4d4731;
inline constexpr std::uint8_t k_frame_version = 2;
inline constexpr std::size_t k_frame_header = 40;
inline constexpr std::uint32_t k_max_payload = 64u << 20;
inline constexpr std::uint16_t k_frame_zstd = 0x0001;

enum class FrameType : std::uint8_t {
  hello = 1,    // handshake: nonce (and the server's proof)
  auth = 2,     // handshake: the client's proof
  auth_ok = 3,  // handshake accepted; JSON {receiver}: the receiver's kind (handshake.h)
  data = 4,     // a batch of tokens (page_codec.h)
  end = 5,      // sender: the stream is complete; JSON {bytes, hash}
  result = 6,   // receiver: JSON outcome after the destination loaded
  abort = 7,    // either side: UTF-8 reason; the peer stops
  // Commit handshake (session.h). 8-9 unused; 20 and up belong to other messages.
  mode = 10,     // receiver, its first frame: JSON {hold}: the destination stays paused after loading until "go"
  ready = 11,    // receiver: stream verified and loaded, destination paused; JSON {bytes_to_qemu, stream_hash}
  go = 12,       // sender: start the destination (empty)
  running = 13,  // receiver: the destination runs after "go"; JSON outcome as for "result"
  // Libvirt hosts (libvirt_host.h), right after the handshake:
  domain_xml = 20,    // sender: the domain's migratable XML (UTF-8)
  domain_ready = 21,  // receiver: the domain is started, paused, waiting for the stream
};

// Whether `type` is a frame type this version knows.
bool known_frame_type(std::uint8_t type) noexcept;

struct FrameHeader {
  FrameType type = FrameType::data;
  std::uint16_t flags = 0;
  std::uint64_t seq = 0;
  std::uint32_t payload_len = 0;
  std::uint32_t raw_len = 0;
  std::uint64_t payload_hash = 0;
};

// Appends the 40-byte header for `payload` (computes both hashes).
void encode_frame_header(Bytes& out, FrameType type, std::uint16_t flags, std::uint64_t seq,
                         std::span<const std::uint8_t> payload, std::uint32_t raw_len);
// Decodes and checks a header (magic, version, header hash, type, lengths).
[[nodiscard]] Result<FrameHeader> decode_frame_header(std::span<const std::uint8_t, k_frame_header> bytes);
// Checks the payload against the header's hash.
[[nodiscard]] Result<void> check_frame_payload(const FrameHeader& h, std::span<const std::uint8_t> payload);

}  // namespace utsushi::livemig
