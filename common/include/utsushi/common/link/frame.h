#pragma once
// The frame of utsushi's one link layer (link.h): every message between two
// utsushi programs over a network (p2v capture --to / serve, livemig
// send / receive / migrate / evacuate) is one frame.
//
//   offset size  field
//   0      4     magic "UTLK" (0x55544c4b), big-endian
//   4      1     link version (k_link_version)
//   5      1     type: 0x01..0xef the protocol's messages (its own enum);
//                0xf0..0xff the link's own (k_type_*: handshake, refuse, abort)
//   6      2     flags, big-endian: bit 0 (k_flag_compressed) is the
//                protocol's to define (livemig: the payload is a zstd
//                streaming block); every other bit must be 0
//   8      8     sequence number, big-endian (per direction, from 0, +1 per frame)
//   16     4     payload length, big-endian (<= the receiver's limit, link.h)
//   20     4     raw length: the payload's length once decoded by the
//                protocol (equal to the payload length when not compressed;
//                <= k_max_frame_payload)
//   24     8     XXH3-64 of the payload, big-endian
//   32     8     XXH3-64 of bytes 0..31, big-endian (a corrupted length is
//                caught before the receiver waits for a payload that never
//                comes)
//   40     ...   payload
//
// A frame whose magic, version, hashes, lengths, flags or sequence number is
// wrong is Errc::corruption (a version this build does not speak:
// not_supported); the connection is then unusable.

#include <cstdint>
#include <span>
#include <type_traits>

#include "utsushi/common/endian.h"
#include "utsushi/common/error.h"

namespace utsushi::link {

inline constexpr std::uint32_t k_frame_magic = 0x55544c4b;  // "UTLK"
inline constexpr std::uint8_t k_link_version = 1;
inline constexpr std::size_t k_frame_header = 40;
// No frame, of any protocol, carries more (a protocol may set a lower limit).
inline constexpr std::uint32_t k_max_frame_payload = 64u << 20;
inline constexpr std::uint16_t k_flag_compressed = 0x0001;

// Offsets of the header's fields.
namespace frame_offset {
inline constexpr std::size_t magic = 0, version = 4, type = 5, flags = 6, seq = 8, payload_len = 16, raw_len = 20,
                             payload_hash = 24, header_hash = 32;
}  // namespace frame_offset
static_assert(frame_offset::header_hash + 8 == k_frame_header);

// The link's own message types (handshake.h); protocols use 1..k_last_protocol_type.
inline constexpr std::uint8_t k_last_protocol_type = 0xef;
inline constexpr std::uint8_t k_type_hello = 0xf0;
inline constexpr std::uint8_t k_type_auth = 0xf1;
inline constexpr std::uint8_t k_type_auth_ok = 0xf2;
inline constexpr std::uint8_t k_type_refuse = 0xf3;  // handshake refused: u8 code, UTF-8 reason (handshake.h)
inline constexpr std::uint8_t k_type_abort = 0xff;   // either side, any time: UTF-8 reason; the peer stops

// A frame's type: compares with any one-byte enum of a protocol (or the
// k_type_* constants), so each protocol keeps its own enum.
struct MessageType {
  std::uint8_t value = 0;

  template <class E>
    requires std::is_enum_v<E> && (sizeof(E) == 1)
  friend constexpr bool operator==(MessageType a, E b) noexcept {
    return a.value == static_cast<std::uint8_t>(b);
  }
  friend constexpr bool operator==(MessageType a, std::uint8_t b) noexcept { return a.value == b; }
  friend constexpr bool operator==(MessageType a, MessageType b) noexcept = default;
  explicit constexpr operator int() const noexcept { return value; }
};

struct FrameHeader {
  MessageType type;
  std::uint16_t flags = 0;
  std::uint64_t seq = 0;
  std::uint32_t payload_len = 0;
  std::uint32_t raw_len = 0;
  std::uint64_t payload_hash = 0;
};

// Appends the 40-byte header for `payload` (computes both hashes).
void encode_frame_header(Bytes& out, std::uint8_t type, std::uint16_t flags, std::uint64_t seq,
                         std::span<const std::uint8_t> payload, std::uint32_t raw_len);
// Decodes and checks a header: magic, header hash, version, flags, type 0,
// and both lengths against `max_payload` (itself at most k_max_frame_payload).
[[nodiscard]] Result<FrameHeader> decode_frame_header(std::span<const std::uint8_t, k_frame_header> bytes,
                                                      std::uint32_t max_payload);
// Checks the payload against the header's length and hash.
[[nodiscard]] Result<void> check_frame_payload(const FrameHeader& h, std::span<const std::uint8_t> payload);

}  // namespace utsushi::link
