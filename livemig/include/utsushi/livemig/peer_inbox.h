#pragma once
// The sender's side of what the receiver sends during a session (frame.h),
// for whichever thread needs it: the pump waits for `progress` (its flow
// control), the disks' pre-copy looks for an abort, the phases read the
// verdict. `progress` frames only raise taken(); every other frame waits, in
// order, for next(). One thread reads the link at a time (Link allows one
// reader beside one sender).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "utsushi/common/error.h"
#include "utsushi/livemig/link.h"

namespace utsushi::livemig {

class PeerInbox {
 public:
  static constexpr std::size_t k_max_kept = 8;
  explicit PeerInbox(Link& link) noexcept : m_link(link) {}

  // Reads one frame if one arrives within `wait`; a frame that is not
  // `progress` is kept for next(). A wait of 0 returns at once when another
  // thread is reading. Errors: the link's, a malformed progress payload, and
  // more than k_max_kept frames waiting (Errc::corruption: a receiver sends
  // an abort or its verdict, not a flood).
  [[nodiscard]] Result<void> poll(std::chrono::milliseconds wait);
  // Reads every frame already there, without waiting (nothing when another
  // thread is reading). The pump calls it at every batch: the receiver sends
  // a `progress` frame per batch its QEMU took, and a socket nobody drains
  // fills (a default socket pair holds about 35 small frames, the in-process
  // links' larger ones a few hundred) and blocks the receiver, which then
  // stops reading the sender's stream.
  [[nodiscard]] Result<void> drain();
  // The receiver's latest progress (0 before any).
  std::uint64_t taken() const noexcept { return m_taken.load(); }
  // The reason of an abort frame among those kept, if one came.
  std::optional<std::string> abort_reason() const;
  // The first kept frame, else the next one the link carries within
  // `timeout` that is not `progress`.
  [[nodiscard]] Result<Frame> next(std::chrono::milliseconds timeout);

 private:
  [[nodiscard]] Result<std::optional<Frame>> read_one(std::chrono::milliseconds wait);
  [[nodiscard]] Result<void> keep(Frame f);

  Link& m_link;
  std::mutex m_reading;        // one reader of the link
  mutable std::mutex m_state;  // m_kept
  std::deque<Frame> m_kept;
  std::atomic<std::uint64_t> m_taken{0};
};

}  // namespace utsushi::livemig
