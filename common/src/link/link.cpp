#include "utsushi/common/link/link.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/core.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <thread>

#include "utsushi/common/cancel.h"

namespace utsushi::link {

using namespace std::chrono;

namespace {

constexpr std::size_t k_pace_chunk = 64 * 1024;
constexpr milliseconds k_forever{milliseconds::max().count() / 2};

// Waits for `events` on fd until `wait` runs out, in slices of 100 ms so that
// shutdown and cancellation are noticed.
Result<void> wait_fd(int fd, short events, Clock::time_point deadline, const std::atomic<bool>& shut,
                     const char* what) {
  for (;;) {
    if (shut.load()) {
      return fail(Errc::aborted, std::string("link: shut down while ") + what);
    }
    UTSUSHI_TRY(check_cancelled());
    auto left = ceil<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return fail(Errc::unavailable, std::string("link: the peer took too long while ") + what);
    }
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
    if (r < 0 && errno != EINTR) {
      return fail_errno(errno, "link: poll");
    }
    if (r > 0) {
      return {};
    }
  }
}

Clock::time_point later(Clock::time_point a, milliseconds d) {
  return d >= k_forever ? Clock::time_point::max() : a + d;
}

}  // namespace

Link::Link(Fd fd, LinkOptions options) : m_fd(std::move(fd)), m_options(options) {
  m_options.max_payload = std::min(m_options.max_payload, k_max_frame_payload);
  m_limit = std::min(m_limit, m_options.max_payload);
  int domain = 0;
  socklen_t len = sizeof domain;
  if (::getsockopt(m_fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
      (domain == AF_INET || domain == AF_INET6)) {
    int buf = 512 * 1024;
    ::setsockopt(m_fd.get(), SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    // Frames leave whole (every part but the last with MSG_MORE), so Nagle's
    // algorithm has nothing to coalesce; left on, it would hold a short
    // frame until the peer's delayed ACK (40 ms on Linux) at every exchange.
    int one = 1;
    ::setsockopt(m_fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

Result<void> Link::write_paced(std::span<const std::uint8_t> bytes, bool more) {
  while (!bytes.empty()) {
    std::size_t n = std::min(bytes.size(), k_pace_chunk);
    if (m_options.rate_bytes_per_sec > 0) {
      auto now = Clock::now();
      // Allow a burst of one chunk; otherwise wait for the pacing slot.
      if (m_next_send < now - milliseconds(20)) {
        m_next_send = now - milliseconds(20);
      }
      if (m_next_send > now) {
        std::this_thread::sleep_for(m_next_send - now);
      }
      m_next_send += duration_cast<Clock::duration>(
          duration<double>(static_cast<double>(n) / static_cast<double>(m_options.rate_bytes_per_sec)));
    }
    std::size_t done = 0;
    while (done < n) {
      UTSUSHI_TRY(wait_fd(m_fd.get(), POLLOUT, later(Clock::now(), m_options.io_timeout), m_shut, "sending"));
      // More follows: the rest of the frame (its payload, or this payload's next chunks).
      bool follows = more || n < bytes.size();
      int flags = MSG_NOSIGNAL | MSG_DONTWAIT | (follows ? MSG_MORE : 0);
      ssize_t w = ::send(m_fd.get(), bytes.data() + done, n - done, flags);
      if (w < 0) {
        if (errno == EINTR || errno == EAGAIN) {
          continue;
        }
        return fail(Errc::unavailable, fmt::format("link: send failed: {}", std::strerror(errno)), errno);
      }
      done += static_cast<std::size_t>(w);
      m_sent += static_cast<std::uint64_t>(w);
    }
    bytes = bytes.subspan(n);
  }
  return {};
}

Result<void> Link::send_raw(std::uint8_t type, std::span<const std::uint8_t> payload, std::uint16_t flags,
                            std::uint32_t raw_len) {
  if (payload.size() > k_max_frame_payload || type == 0) {
    return fail(Errc::internal, "link: frame payload too large (or type 0)");
  }
  Bytes header;
  header.reserve(k_frame_header);
  encode_frame_header(header, type, flags, m_send_seq++, payload,
                      raw_len == UINT32_MAX ? static_cast<std::uint32_t>(payload.size()) : raw_len);
  UTSUSHI_TRY(write_paced(header, !payload.empty()));
  return write_paced(payload);
}

Result<void> Link::read_exact(std::span<std::uint8_t> buf, Wait wait) {
  std::size_t done = 0;
  while (done < buf.size()) {
    auto deadline = std::min(wait.deadline, later(Clock::now(), wait.idle));
    UTSUSHI_TRY(wait_fd(m_fd.get(), POLLIN, deadline, m_shut, "receiving"));
    ssize_t r = ::recv(m_fd.get(), buf.data() + done, buf.size() - done, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return fail(Errc::unavailable, fmt::format("link: receive failed: {}", std::strerror(errno)), errno);
    }
    if (r == 0) {
      return fail(Errc::unavailable, "link: the peer closed the connection");
    }
    done += static_cast<std::size_t>(r);
    m_received += static_cast<std::uint64_t>(r);
  }
  return {};
}

Result<Frame> Link::read_frame(Wait header, Wait payload) {
  std::array<std::uint8_t, k_frame_header> hb{};
  UTSUSHI_TRY(read_exact(hb, header));
  Frame f;
  f.header = UTSUSHI_TRY(decode_frame_header(hb, m_limit));
  if (f.header.seq != m_recv_seq) {
    return fail(Errc::corruption, fmt::format("link frame: sequence {} where {} was expected", f.header.seq, m_recv_seq));
  }
  ++m_recv_seq;
  f.payload.resize(f.header.payload_len);
  UTSUSHI_TRY(read_exact(f.payload, payload));
  if (auto ok = check_frame_payload(f.header, f.payload); !ok) {
    if (!m_options.deliver_damaged || m_limit == k_handshake_max_payload) {
      return std::unexpected(std::move(ok).error());
    }
    f.damaged = true;
  }
  return f;
}

Result<Frame> Link::recv(milliseconds timeout) {
  return read_frame({Clock::time_point::max(), timeout},
                    {Clock::time_point::max(), std::max(timeout, m_options.io_timeout)});
}

Result<Frame> Link::recv_by(Clock::time_point deadline) {
  return read_frame({deadline, k_forever}, {deadline, k_forever});
}

void Link::send_abort(std::string_view reason) noexcept {
  try {
    auto saved = m_options;
    m_options.rate_bytes_per_sec = 0;
    m_options.io_timeout = milliseconds(2000);
    (void)send_raw(k_type_abort, as_bytes(reason.substr(0, 4096)), 0, UINT32_MAX);
    m_options = saved;
  } catch (...) {
  }
}

void Link::shutdown() noexcept {
  m_shut = true;
  if (m_fd) {
    ::shutdown(m_fd.get(), SHUT_RDWR);
  }
}

}  // namespace utsushi::link
