#pragma once
// Link: the framed connection between a livemig sender and receiver (a TCP
// socket, or a socketpair inside `livemig migrate`).
//
// send() blocks until the whole frame is in the socket. With a rate cap it
// paces its writes (64 KiB at a time) so the link never runs faster than the
// cap; because the sender reads from QEMU only between sends, this is what
// gives QEMU its back-pressure. recv() returns one verified frame.
//
// One thread may send while another receives; two concurrent senders (or
// receivers) need external synchronisation. shutdown() may be called from any
// thread and makes pending and future calls fail with Errc::aborted.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "utsushi/common/fd.h"
#include "utsushi/common/net.h"
#include "utsushi/livemig/frame.h"

namespace utsushi::livemig {

struct LinkOptions {
  std::uint64_t rate_bytes_per_sec = 0;                   // 0: uncapped
  std::chrono::milliseconds io_timeout{std::chrono::seconds(60)};  // no progress for this long: unavailable
};

struct Frame {
  FrameHeader header;
  Bytes payload;
  std::string text() const { return std::string(payload.begin(), payload.end()); }
};

class Link {
 public:
  // On a TCP socket the send buffer is kept modest (512 KiB), so that the
  // pacing in send() rather than a deep socket queue limits the rate.
  Link(Fd fd, LinkOptions options);

  [[nodiscard]] Result<void> send(FrameType type, std::span<const std::uint8_t> payload, std::uint16_t flags = 0,
                                  std::uint32_t raw_len = UINT32_MAX);
  // Waits up to `timeout` for a frame (Errc::unavailable on timeout, EOF or reset).
  [[nodiscard]] Result<Frame> recv(std::chrono::milliseconds timeout);
  // Sends `text` (UTF-8, usually JSON) as the payload of one frame.
  [[nodiscard]] Result<void> send_text(FrameType type, std::string_view text);
  // Sends an abort frame with `reason`, ignoring errors (best effort).
  void send_abort(std::string_view reason) noexcept;
  void shutdown() noexcept;

  std::uint64_t bytes_sent() const noexcept { return m_sent.load(); }
  std::uint64_t bytes_received() const noexcept { return m_received.load(); }
  std::uint64_t frames_sent() const noexcept { return m_send_seq; }
  std::uint64_t frames_received() const noexcept { return m_recv_seq; }
  int fd() const noexcept { return m_fd.get(); }

 private:
  // `more`: further bytes follow at once (a frame header before its payload),
  // so TCP may hold these back until then instead of sending a short segment.
  [[nodiscard]] Result<void> write_paced(std::span<const std::uint8_t> bytes, bool more = false);
  [[nodiscard]] Result<void> read_exact(std::span<std::uint8_t> buf, std::chrono::milliseconds timeout);

  Fd m_fd;
  LinkOptions m_options;
  std::atomic<bool> m_shut{false};
  std::atomic<std::uint64_t> m_sent{0};
  std::atomic<std::uint64_t> m_received{0};
  std::uint64_t m_send_seq = 0;
  std::uint64_t m_recv_seq = 0;
  std::chrono::steady_clock::time_point m_next_send{};
};

// Addresses and sockets are common/net.h's ("HOST:PORT", "[IPV6]:PORT";
// connect with a timeout; listen and accept with a timeout).
using net::HostPort;
using net::Listener;
using net::parse_host_port;
using net::tcp_connect;

// Parses "32M", "32MiB", "32MB/s", "1.5G", "100000" (bytes per second; K/M/G
// are powers of 1024 with or without "i", a trailing "B" or "/s" is ignored).
[[nodiscard]] Result<std::uint64_t> parse_rate(std::string_view text);

}  // namespace utsushi::livemig
