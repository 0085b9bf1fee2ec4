#pragma once
// livemig's messages on utsushi's one link layer (common/link: the frame
// layout, sequence numbers, checksums, handshake and accept loop). Every
// message between sender and receiver is one link frame of these types; the
// link's own abort (k_type_abort) ends a migration from either side.
//
// Protocol "livemig", version k_protocol_version (handshake.h); both ends
// ship together, and a peer of another version is refused in the handshake.
// Version 10: a disk batch's copy ranges start at any sector
// (k_disk_copy_align, disk_message.h); 9: the disk list gives each image's
// allocated size; 8: the receiver reports its progress during the stream
// (`progress`) and the sender keeps at most k_flow_window stream bytes
// beyond it; 7: `disk` page
// references also name blocks of the disks' backing files
// (backing_blocks.h), and disk batches carry blocks the receiver holds as
// `copy` ranges of hashes (disk_message.h); 6: the page codec's `disk` kind
// (block_index.h);
// 5: the disk list describes each image (format, backing file and
// its content hash) and libvirt senders follow domain_xml with domain_disks;
// 4: the disk pre-copy's frames (disk_session.h) and the "mode"
// frame's copy_storage; 3: the link layer's frames and handshake (2 had its
// own "LMG1" frames; 2 added the commit handshake to 1).
//
// A frame that fails the link's checks is Errc::corruption: the migration
// ends (the source keeps running).

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "utsushi/common/endian.h"
#include "utsushi/common/error.h"
#include "utsushi/common/link/frame.h"

namespace utsushi::livemig {

inline constexpr std::uint16_t k_protocol_version = 10;
inline constexpr std::size_t k_frame_header = link::k_frame_header;
inline constexpr std::uint32_t k_max_payload = link::k_max_frame_payload;
// DATA: the payload is a zstd streaming-flush block (page_codec.h tokens inside).
inline constexpr std::uint16_t k_frame_zstd = link::k_flag_compressed;

enum class FrameType : std::uint8_t {
  // 1-3: the handshake of version 2, now the link's own (common/link/handshake.h).
  data = 4,     // a batch of tokens (page_codec.h)
  end = 5,      // sender: the stream is complete; JSON {bytes, hash}
  result = 6,   // receiver: JSON outcome after the destination loaded
  progress = 7,  // receiver, during the stream: the stream bytes its destination has taken (below)
  // Commit handshake (session.h).
  mode = 10,     // receiver, its first frame: JSON {hold, copy_storage}: the destination stays paused after
                 // loading until "go"; copy_storage: it takes the disks (send and receive must agree)
  ready = 11,    // receiver: stream verified and loaded, destination paused; JSON {bytes_to_qemu, stream_hash}
  go = 12,       // sender: start the destination (empty)
  running = 13,  // receiver: the destination runs after "go"; JSON outcome as for "result"
  // Libvirt hosts (libvirt_host.h), right after the handshake:
  domain_xml = 20,    // sender: the domain's migratable XML (UTF-8)
  domain_ready = 21,  // receiver: the domain is started, paused, waiting for the stream
  domain_disks = 22,  // sender, right after domain_xml: the disk list (as `disks`; empty: memory only)
  // Disk pre-copy (--copy-storage; the order in disk_session.h):
  disk_data = 30,  // sender: one batch of one disk's ranges (disk_message.h)
  disks = 31,      // sender: JSON [{node, qdev, size, file, format, backing...}] (disk_session.h), disk ids 0, 1, ...
  disk_end = 32,   // sender: JSON {hashes}: each disk's write hash (disk_hash.h); no disk data follows
  abort = link::k_type_abort,  // either side: UTF-8 reason; the peer stops
};

// `progress` payload: offset 0, 8 bytes, big-endian: the stream bytes the
// receiver's destination QEMU has read, plus those of the batch it holds
// back until the next frame verified (receiver.cpp). Sent after each batch
// the destination read; the sender's pump keeps at most k_flow_window
// stream bytes in DATA frames beyond it (pump.h), so that what the pipeline
// holds when QEMU stops the guest is bounded by what the destination loads,
// not by what the link and its buffers carry: a 1 MiB batch of `disk`
// references rebuilds to ~230 MiB of stream.
inline constexpr std::size_t k_progress_payload = 8;
inline constexpr std::uint64_t k_flow_window = 32u << 20;

[[nodiscard]] inline std::array<std::uint8_t, k_progress_payload> encode_progress(std::uint64_t taken) noexcept {
  std::array<std::uint8_t, k_progress_payload> out{};
  store_be64(out.data(), taken);
  return out;
}
// Errc::corruption unless exactly k_progress_payload bytes.
[[nodiscard]] inline Result<std::uint64_t> parse_progress(std::span<const std::uint8_t> payload) {
  if (payload.size() != k_progress_payload) {
    return fail(Errc::corruption, "livemig: a progress frame of " + std::to_string(payload.size()) + " bytes");
  }
  return load_be64(payload.data());
}

}  // namespace utsushi::livemig
