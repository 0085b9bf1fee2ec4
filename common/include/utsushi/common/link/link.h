#pragma once
// Link: one framed connection (frame.h) between two utsushi programs: a TCP
// socket (net.h), or a socketpair inside one process (livemig migrate).
// Protocols (p2v's wire_format.h, livemig's frame.h) define their message
// types and payloads; handshake.h authenticates a link, server.h accepts them.
//
// send() blocks until the whole frame is in the socket. With a rate cap it
// paces its writes (64 KiB at a time) so the link never runs faster than the
// cap (livemig's back-pressure on QEMU). Each frame's header goes out with
// MSG_MORE when a payload follows, and TCP sockets get TCP_NODELAY: a frame
// leaves whole, and a short one never waits for the peer's delayed ACK.
// recv() returns one verified frame, in sequence.
//
// Limits: until set_authenticated() a frame may carry at most
// k_handshake_max_payload bytes, so an unauthenticated peer cannot make the
// receiver allocate; after it, LinkOptions::max_payload.
//
// One thread may send while another receives; two concurrent senders (or
// receivers) need external synchronisation. shutdown() may be called from any
// thread and makes pending and future calls fail with Errc::aborted. Waits
// notice cancellation (cancel.h) within 100 ms: Errc::cancelled.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "utsushi/common/fd.h"
#include "utsushi/common/link/frame.h"

namespace utsushi::link {

using Clock = std::chrono::steady_clock;

inline constexpr std::uint32_t k_handshake_max_payload = 1024;

struct LinkOptions {
  std::uint64_t rate_bytes_per_sec = 0;                            // 0: uncapped
  std::chrono::milliseconds io_timeout{std::chrono::seconds(60)};  // no progress for this long: unavailable
  std::uint32_t max_payload = k_max_frame_payload;                 // per frame, once authenticated
  // A frame whose header verified but whose payload does not match its hash
  // is returned with Frame::damaged set (the link stays in step: its length
  // was right) instead of failing with Errc::corruption. For protocols that
  // ask for a damaged message again (p2v's chunks).
  bool deliver_damaged = false;
};

struct Frame {
  FrameHeader header;
  Bytes payload;
  bool damaged = false;  // only with LinkOptions::deliver_damaged
  std::string text() const { return std::string(payload.begin(), payload.end()); }
};

class Link {
 public:
  // On a TCP socket the send buffer is kept modest (512 KiB), so that the
  // pacing in send() rather than a deep socket queue limits the rate.
  Link(Fd fd, LinkOptions options);

  // `type` is a protocol's enum (one byte) or a k_type_* constant.
  template <class T>
  [[nodiscard]] Result<void> send(T type, std::span<const std::uint8_t> payload, std::uint16_t flags = 0,
                                  std::uint32_t raw_len = UINT32_MAX) {
    return send_raw(static_cast<std::uint8_t>(type), payload, flags, raw_len);
  }
  // Sends `text` (UTF-8, usually JSON) as the payload of one frame.
  template <class T>
  [[nodiscard]] Result<void> send_text(T type, std::string_view text) {
    return send_raw(static_cast<std::uint8_t>(type), as_bytes(text), 0, UINT32_MAX);
  }
  // Waits up to `timeout` for a frame's header and up to max(timeout,
  // io_timeout) without progress for its payload. unavailable on timeout, EOF
  // or reset; corruption for a bad frame.
  [[nodiscard]] Result<Frame> recv(std::chrono::milliseconds timeout);
  // The whole frame by `deadline` (a trickling peer does not extend it).
  [[nodiscard]] Result<Frame> recv_by(Clock::time_point deadline);
  // Sends an abort frame (k_type_abort) with `reason`, ignoring errors (best
  // effort, uncapped, at most 2 s).
  void send_abort(std::string_view reason) noexcept;
  void shutdown() noexcept;
  // The peer proved the shared secret (handshake.h): frames up to
  // LinkOptions::max_payload are accepted from now on.
  void set_authenticated() noexcept { m_limit = m_options.max_payload; }

  std::uint64_t bytes_sent() const noexcept { return m_sent.load(); }
  std::uint64_t bytes_received() const noexcept { return m_received.load(); }
  std::uint64_t frames_sent() const noexcept { return m_send_seq; }
  std::uint64_t frames_received() const noexcept { return m_recv_seq; }
  int fd() const noexcept { return m_fd.get(); }

 private:
  struct Wait {
    Clock::time_point deadline;    // absolute
    std::chrono::milliseconds idle;  // without progress
  };
  [[nodiscard]] Result<void> send_raw(std::uint8_t type, std::span<const std::uint8_t> payload, std::uint16_t flags,
                                      std::uint32_t raw_len);
  // `more`: further bytes follow at once (a frame header before its payload),
  // so TCP may hold these back until then instead of sending a short segment.
  [[nodiscard]] Result<void> write_paced(std::span<const std::uint8_t> bytes, bool more = false);
  [[nodiscard]] Result<void> read_exact(std::span<std::uint8_t> buf, Wait wait);
  [[nodiscard]] Result<Frame> read_frame(Wait header, Wait payload);

  Fd m_fd;
  LinkOptions m_options;
  std::uint32_t m_limit = k_handshake_max_payload;
  std::atomic<bool> m_shut{false};
  std::atomic<std::uint64_t> m_sent{0};
  std::atomic<std::uint64_t> m_received{0};
  std::uint64_t m_send_seq = 0;
  std::uint64_t m_recv_seq = 0;
  Clock::time_point m_next_send{};
};

}  // namespace utsushi::link
