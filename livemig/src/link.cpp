#include "utsushi/livemig/link.h"

#include <fcntl.h>
#include <netdb.h>
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
  if (const char* c = std::getenv("LIVEMIG_TEST_CORRUPT_FRAME")) {
    m_corrupt_frame = std::strtoull(c, nullptr, 10);
  }
}

Result<void> Link::write_paced(std::span<const std::uint8_t> bytes) {
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
      ssize_t w = ::send(m_fd.get(), bytes.data() + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
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
  UTSUSHI_TRY(write_paced(header));
  if (type == FrameType::data && ++m_data_frames == m_corrupt_frame && !payload.empty()) {
    Bytes bad(payload.begin(), payload.end());
    bad[bad.size() / 2] ^= 0x01;
    return write_paced(bad);
  }
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

Result<HostPort> parse_host_port(std::string_view text) {
  HostPort hp;
  std::size_t colon;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail(Errc::invalid_argument, fmt::format("'{}' is not [IPV6]:PORT", text));
    }
    hp.host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return fail(Errc::invalid_argument, fmt::format("'{}' is not HOST:PORT", text));
    }
    hp.host = std::string(text.substr(0, colon));
  }
  hp.port = std::string(text.substr(colon + 1));
  unsigned port = 0;
  auto [p, ec] = std::from_chars(hp.port.data(), hp.port.data() + hp.port.size(), port);
  if (ec != std::errc() || p != hp.port.data() + hp.port.size() || port > 65535) {
    return fail(Errc::invalid_argument, fmt::format("bad port in '{}'", text));
  }
  return hp;
}

namespace {

struct AddrInfoFree {
  void operator()(addrinfo* a) const noexcept { freeaddrinfo(a); }
};

Result<std::unique_ptr<addrinfo, AddrInfoFree>> resolve(const HostPort& hp, bool passive) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), hp.port.c_str(), &hints, &res);
  if (rc != 0) {
    return fail(Errc::not_found, fmt::format("cannot resolve {}:{}: {}", hp.host, hp.port, gai_strerror(rc)));
  }
  return std::unique_ptr<addrinfo, AddrInfoFree>(res);
}

void tune_socket(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int buf = 512 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
}

}  // namespace

Result<Fd> tcp_connect(const HostPort& to, milliseconds timeout) {
  auto res = UTSUSHI_TRY(resolve(to, false));
  std::string last = "no address";
  for (addrinfo* a = res.get(); a != nullptr; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (!fd) {
      last = std::strerror(errno);
      continue;
    }
    tune_socket(fd.get());
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
      last = std::strerror(errno);
      continue;
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    int err = 0;
    socklen_t len = sizeof err;
    if (r <= 0) {
      last = "timed out";
      continue;
    }
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last = std::strerror(err);
      continue;
    }
    return fd;
  }
  return fail(Errc::unavailable, fmt::format("cannot connect to {}:{}: {}", to.host, to.port, last));
}

Result<Listener> Listener::listen(const HostPort& at) {
  auto res = UTSUSHI_TRY(resolve(at, true));
  std::string last = "no address";
  for (addrinfo* a = res.get(); a != nullptr; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) {
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) < 0 || ::listen(fd.get(), 4) < 0) {
      last = std::strerror(errno);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    Listener l;
    l.m_port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    l.m_fd = std::move(fd);
    return l;
  }
  return fail(Errc::unavailable, fmt::format("cannot listen on {}:{}: {}", at.host, at.port, last));
}

Result<Fd> Listener::accept(milliseconds timeout) {
  std::atomic<bool> never{false};
  UTSUSHI_TRY(wait_fd(m_fd.get(), POLLIN, timeout, never, "waiting for a sender"));
  Fd fd(::accept4(m_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!fd) {
    return fail_errno(errno, "livemig: accept");
  }
  tune_socket(fd.get());
  return fd;
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
