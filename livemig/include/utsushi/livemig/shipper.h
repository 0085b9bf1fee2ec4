#pragma once
// Shipper: the link stage of a sending pipeline (the pump's memory batches,
// a disk pass's batches). Its thread takes frames from a bounded queue and
// hands each to `send` (Link::send under the sender's lock), so the stage that
// reads, encodes and compresses overlaps the link, with at most `capacity`
// frames in between. It times every send: ship_ns() is the time spent inside
// `send`, back-pressure from a slow link or receiver included, and so is a
// wait for the sender's lock while another stage's frame is on the link (what
// LevelController calls ship_s: either way the link was busy).
//
// One producer thread calls push() and then finish() or abandon(); the
// destructor abandons what finish() did not end.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>

#include "utsushi/common/endian.h"
#include "utsushi/common/error.h"
#include "utsushi/livemig/frame.h"
#include "utsushi/livemig/frame_queue.h"

namespace utsushi::livemig {

struct OutFrame {
  FrameType type = FrameType::data;
  Bytes payload;
  std::uint16_t flags = 0;
  std::uint32_t raw_len = 0;  // the payload's size before compression (frame.h)
};

class Shipper {
 public:
  using Send = std::function<Result<void>(const OutFrame&)>;
  Shipper(std::size_t capacity, Send send);
  ~Shipper();
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  // Blocks while `capacity` frames wait; fails with the link's error once a
  // send failed (the frame is then dropped).
  [[nodiscard]] Result<void> push(OutFrame frame);
  // No more frames: returns once every frame was sent, or with the first
  // send's error.
  [[nodiscard]] Result<void> finish();
  // Stops at once: frames not yet sent are dropped, `why` becomes error()
  // unless a send failed first.
  void abandon(Error why);
  // The first send's error (or abandon's reason); nullopt while all went well.
  std::optional<Error> error() const { return m_queue.error(); }

  std::uint64_t ship_ns() const noexcept { return m_ship_ns.load(); }
  // Frames' bytes handed to `send`, headers included.
  std::uint64_t shipped_bytes() const noexcept { return m_shipped.load(); }

 private:
  void run();

  BoundedQueue<OutFrame> m_queue;
  Send m_send;
  std::atomic<std::uint64_t> m_ship_ns{0};
  std::atomic<std::uint64_t> m_shipped{0};
  std::thread m_thread;
};

}  // namespace utsushi::livemig
