#pragma once
// The network restore protocol (v2p serve / v2p restore --from): protocol
// "v2p-image", version k_protocol_version, on utsushi's one link layer
// (common/link: frames with sequence numbers and XXH3 checksums, the token
// handshake, the server's accept loop with limits), as p2v's transfer is.
//
// The server holds one image; a client reads it as a block device
// (remote_image.h), so a network restore runs the same code as a local one
// and reads only what a local one reads: the filesystems' metadata to map
// their used blocks, then the used blocks. Each client thread has a link of
// its own; on each, one request and its reply at a time:
//
//   C->S INFO      (empty)
//   S->C INFO      JSON {size, format, identity, name}
//   C->S READ      offset be64 | length be32                    (12 bytes)
//   S->C DATA      one zstd frame of the length's bytes (frame flag
//                  k_flag_compressed, raw length = length)
//   C->S EXTENTS   offset be64 | length be64                    (16 bytes)
//   S->C EXTENTS   count be32, then count x (offset be64 | length be64 | type u8)
//   S->C ERROR     JSON {message}: the request failed on the server (an I/O
//                  error reading the image, a range outside it); the link
//                  stays usable.
//
// Limits, checked by both sides: a READ is at most k_max_read bytes and lies
// inside the image (offset + length checked for overflow); an EXTENTS reply
// holds at most k_max_extents extents, contiguous from the asked offset.
// Every message decodes into a Result; a malformed one is Errc::corruption.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "utsushi/common/endian.h"
#include "utsushi/common/link/handshake.h"
#include "utsushi/imagefmt/block_driver.h"

namespace utsushi::v2p::wire {

inline constexpr std::uint16_t k_protocol_version = 1;
inline constexpr link::Protocol k_protocol{"v2p-image", k_protocol_version};
inline constexpr std::uint32_t k_max_read = 4u << 20;
inline constexpr std::uint32_t k_max_extents = 65536;
// Larger than ZSTD_compressBound(k_max_read) and the largest EXTENTS reply.
inline constexpr std::uint32_t k_max_payload = 6u << 20;
inline constexpr std::size_t k_read_size = 12;
inline constexpr std::size_t k_extents_request_size = 16;
inline constexpr std::size_t k_extent_size = 17;

enum class MsgType : std::uint8_t { info = 1, read = 2, data = 3, extents = 4, error = 5 };

struct ImageInfo {
  std::uint64_t size = 0;
  std::string format;    // the served image's format ("qcow2", "raw"...)
  std::string identity;  // changes when any file of the image changes (the resume journal's key)
  std::string name;      // the image's file name, for messages
};

struct ReadRequest {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
};

struct ExtentsRequest {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

[[nodiscard]] Bytes encode_info(const ImageInfo& info);
[[nodiscard]] Result<ImageInfo> decode_info(std::span<const std::uint8_t> payload);

[[nodiscard]] Bytes encode_read(const ReadRequest& r);
// Also checks the range: 0 < length <= k_max_read, inside `image_size`.
[[nodiscard]] Result<ReadRequest> decode_read(std::span<const std::uint8_t> payload, std::uint64_t image_size);

[[nodiscard]] Bytes encode_extents_request(const ExtentsRequest& r);
// Also checks the range: 0 < length, inside `image_size`.
[[nodiscard]] Result<ExtentsRequest> decode_extents_request(std::span<const std::uint8_t> payload,
                                                            std::uint64_t image_size);

[[nodiscard]] Bytes encode_extents(std::span<const imagefmt::Extent> extents);
// Checks the reply against its request: 1..k_max_extents extents, the first
// at `asked.offset`, each contiguous with the one before and non-empty, none
// past `image_size`, types known.
[[nodiscard]] Result<std::vector<imagefmt::Extent>> decode_extents(std::span<const std::uint8_t> payload,
                                                                   const ExtentsRequest& asked,
                                                                   std::uint64_t image_size);

[[nodiscard]] Bytes encode_error(std::string_view message);
[[nodiscard]] Result<std::string> decode_error(std::span<const std::uint8_t> payload);

}  // namespace utsushi::v2p::wire
