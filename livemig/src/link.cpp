#include "utsushi/livemig/link.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <thread>

#include "utsushi/common/cancel.h"

namespace utsushi::livemig {

using namespace std::chrono;

namespace {

constexpr std::size_t k_pace_chunk = 64 * 1024;

// Waits for `events` on fd in slices of 100 ms, so shutdown/cancel are noticed.
Result<void> wait_fd(int fd, short events, milliseconds timeout, const std::atomic<bool>& shut, const char* what) {
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    if (shut.load()) {
      return fail(Errc::aborted, std::string("livemig link: shut down while ") + what);
    }
    if (cancel_requested()) {
      return fail(Errc::cancelled, std::string("livemig link: cancelled while ") + what);
    }
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) {
      return fail(Errc::unavailable, fmt::format("livemig link: no progress for {} ms while {}", timeout.count(), what));
    }
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long>(left, 100)));
    if (r < 0 && errno != EINTR) {
      return fail_errno(errno, "livemig link: poll");
    }
    if (r > 0) {
      return {};
    }
  }
}

}  // namespace

Link::Link(Fd fd, LinkOptions options) : m_fd(std::move(fd)), m_options(options) {
  int domain = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(m_fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
      (domain == AF_INET || domain == AF_INET6)) {
    int buf = 512 * 1024;
    ::setsockopt(m_fd.get(), SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    // Frames leave whole (every part but the last with MSG_MORE), so Nagle's
    // algorithm has nothing to coalesce; left on, it would hold a short
    // frame until the peer's delayed ACK (40 ms on Linux) at every exchange:
    // the mode frame, the stream's end, the commit handshake. net.h's
    // sockets come with it already; any other TCP socket gets it here.
    int one = 1;
    ::setsockopt(m_fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

Result<void> Link::write_paced(std::span<const std::uint8_t> bytes, bool more) {
  while (!bytes.empty()) {
    std::size_t n = std::min(bytes.size(), k_pace_chunk);
    if (m_options.rate_bytes_per_sec > 0) {
      auto now = steady_clock::now();
      // Allow a burst of one chunk; otherwise wait for the pacing slot.
      if (m_next_send < now - milliseconds(20)) {
        m_next_send = now - milliseconds(20);
      }
      if (m_next_send > now) {
        std::this_thread::sleep_for(m_next_send - now);
      }
      m_next_send += duration_cast<steady_clock::duration>(
          duration<double>(static_cast<double>(n) / static_cast<double>(m_options.rate_bytes_per_sec)));
    }
    std::size_t done = 0;
    while (done < n) {
      UTSUSHI_TRY(wait_fd(m_fd.get(), POLLOUT, m_options.io_timeout, m_shut, "sending"));
      // More follows: the rest of the frame (its payload, or this payload's next chunks).
      bool follows = more || n < bytes.size();
      int flags = MSG_NOSIGNAL | MSG_DONTWAIT | (follows ? MSG_MORE : 0);
      ssize_t w = ::send(m_fd.get(), bytes.data() + done, n - done, flags);
      if (w < 0) {
        if (errno == EINTR || errno == EAGAIN) {
          continue;
        }
        return fail(Errc::unavailable, fmt::format("livemig link: send failed: {}", std::strerror(errno)), errno);
      }
      done += static_cast<std::size_t>(w);
      m_sent += static_cast<std::uint64_t>(w);
    }
    bytes = bytes.subspan(n);
  }
  return {};
}

Result<void> Link::send(FrameType type, std::span<const std::uint8_t> payload, std::uint16_t flags,
                        std::uint32_t raw_len) {
  if (payload.size() > k_max_payload) {
    return fail(Errc::internal, "livemig link: frame payload too large");
  }
  Bytes header;
  encode_frame_header(header, type, flags, m_send_seq++, payload,
                      raw_len == UINT32_MAX ? static_cast<std::uint32_t>(payload.size()) : raw_len);
  UTSUSHI_TRY(write_paced(header, !payload.empty()));
  return write_paced(payload);
}

Result<void> Link::read_exact(std::span<std::uint8_t> buf, milliseconds timeout) {
  std::size_t done = 0;
  while (done < buf.size()) {
    UTSUSHI_TRY(wait_fd(m_fd.get(), POLLIN, timeout, m_shut, "receiving"));
    ssize_t r = ::recv(m_fd.get(), buf.data() + done, buf.size() - done, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return fail(Errc::unavailable, fmt::format("livemig link: receive failed: {}", std::strerror(errno)), errno);
    }
    if (r == 0) {
      return fail(Errc::unavailable, "livemig link: peer closed the connection");
    }
    done += static_cast<std::size_t>(r);
    m_received += static_cast<std::uint64_t>(r);
  }
  return {};
}

Result<Frame> Link::recv(milliseconds timeout) {
  std::array<std::uint8_t, k_frame_header> hb{};
  UTSUSHI_TRY(read_exact(hb, timeout));
  Frame f;
  f.header = UTSUSHI_TRY(decode_frame_header(hb));
  if (f.header.seq != m_recv_seq) {
    return fail(Errc::corruption,
                fmt::format("livemig frame: sequence {} where {} was expected", f.header.seq, m_recv_seq));
  }
  ++m_recv_seq;
  f.payload.resize(f.header.payload_len);
  UTSUSHI_TRY(read_exact(f.payload, std::max(timeout, m_options.io_timeout)));
  UTSUSHI_TRY(check_frame_payload(f.header, f.payload));
  return f;
}

Result<void> Link::send_text(FrameType type, std::string_view text) {
  return send(type, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

void Link::send_abort(std::string_view reason) noexcept {
  try {
    std::span<const std::uint8_t> p(reinterpret_cast<const std::uint8_t*>(reason.data()), reason.size());
    auto saved = m_options.rate_bytes_per_sec;
    m_options.rate_bytes_per_sec = 0;
    m_options.io_timeout = milliseconds(2000);
    (void)send(FrameType::abort, p);
    m_options.rate_bytes_per_sec = saved;
  } catch (...) {
  }
}

void Link::shutdown() noexcept {
  m_shut = true;
  if (m_fd) {
    ::shutdown(m_fd.get(), SHUT_RDWR);
  }
}

Result<std::uint64_t> parse_rate(std::string_view text) {
  std::string s(text);
  for (const char* suffix : {"/s", "ps"}) {
    if (s.size() > 2 && s.ends_with(suffix)) {
      s.resize(s.size() - 2);
    }
  }
  if (!s.empty() && (s.back() == 'B' || s.back() == 'b')) {
    s.pop_back();
  }
  if (!s.empty() && s.back() == 'i') {
    s.pop_back();
  }
  double mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k': case 'K': mult = 1024.0; break;
      case 'm': case 'M': mult = 1024.0 * 1024; break;
      case 'g': case 'G': mult = 1024.0 * 1024 * 1024; break;
      default: break;
    }
    if (mult != 1) {
      s.pop_back();
    }
  }
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !(v > 0) || v * mult > 1e15) {
    return fail(Errc::invalid_argument, fmt::format("bad rate '{}' (e.g. 32M, 500K, 1G)", text));
  }
  return static_cast<std::uint64_t>(v * mult);
}

}  // namespace utsushi::livemig
