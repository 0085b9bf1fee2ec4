#pragma once
// The sender's pump (internal to livemig's sender): reads QEMU's migration
// stream, parses and encodes it into token batches, compresses them at the
// adaptive zstd level (batch_compressor.h) and ships them as DATA frames on a
// second thread, then the END frame. Reads from QEMU only as fast as the link
// ships, with a few frames of slack so the link stays busy while QEMU
// finishes the stream.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "utsushi/common/error.h"
#include "utsushi/livemig/batch_compressor.h"
#include "utsushi/livemig/link.h"
#include "utsushi/livemig/page_codec.h"
#include "utsushi/livemig/peer_inbox.h"
#include "utsushi/livemig/session.h"
#include "utsushi/livemig/stream_parser.h"

namespace utsushi::livemig {

struct PumpResult {
  bool finished = false;        // the thread has ended
  bool stream_complete = false; // END frame handed to the link
  std::optional<Error> error;
  StreamSummary summary;
  std::uint64_t bytes = 0;
  std::uint64_t hash = 0;       // XXH3-64 of the stream as read from QEMU
  KindTable kinds{};
  ZstdLevelBytes level_bytes{};
  std::uint64_t data_frames = 0;
  std::uint64_t data_payload = 0;  // compressed bytes of DATA frames
  std::uint64_t ship_ms = 0;       // time the shipper spent inside Link::send
  std::uint64_t qemu_wait_ms = 0;  // time the pump waited for QEMU's stream
  std::uint64_t flow_wait_ms = 0;  // time the pump waited for the receiver's progress (flow control)
};

// What the pump has read so far, for the caller's progress and the policy's
// page rate (policy.h): stream bytes, and page records parsed.
struct PumpProgress {
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> pages{0};
};

// Flow control (frame.h): before it hands a DATA frame to the link, the pump
// waits until the stream bytes in DATA frames so far exceed the receiver's
// progress (`inbox`) by at most k_flow_window; meanwhile it reads nothing
// from QEMU, whose stream then slows (and whose switch-over estimate with
// it). No progress for k_flow_stall is an error.
inline constexpr std::chrono::seconds k_flow_stall{60};

// `first_pass_near_end`, when set, is called on the pump's thread as
// FirstPassWatch says (first_pass_hold.h, k_first_pass_margin); while it
// runs the pump reads nothing.
// Runs until QEMU ends the stream (then the END frame is handed to the link),
// `stop` is set, or the stream or the link fails (then QEMU's socket is shut,
// so that QEMU's writer fails at once instead of blocking). `progress`
// follows the stream. The shipper holds
// `send_lock` while it sends a frame, so another thread (the final disk pass)
// may send between the pump's frames under the same lock. Pages equal to a
// block in `disk_blocks` (null: none) go as references to it (page_codec.h).
void pump(int qemu_fd, Link& link, PeerInbox& inbox, const SendOptions& options, const std::atomic<bool>& stop,
          PumpResult& out, PumpProgress& progress, std::mutex& send_lock, const SentBlocks* disk_blocks,
          std::function<void()> first_pass_near_end = {});

}  // namespace utsushi::livemig
