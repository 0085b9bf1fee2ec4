#include "utsushi/common/net.h"

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
#include <cstring>
#include <memory>

#include "utsushi/common/cancel.h"

namespace utsushi::net {

using namespace std::chrono;

namespace {

struct AddrInfoFree {
  void operator()(addrinfo* a) const noexcept { ::freeaddrinfo(a); }
};
using AddrInfo = std::unique_ptr<addrinfo, AddrInfoFree>;

Result<AddrInfo> resolve(const HostPort& hp, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), hp.port.c_str(), &hints, &res);
  if (rc != 0) {
    return fail(Errc::unavailable, fmt::format("cannot resolve {}: {}", format_host_port(hp), ::gai_strerror(rc)));
  }
  return AddrInfo(res);
}

void tune(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

Result<void> set_blocking(int fd, bool blocking) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) {
    return fail_errno(errno, "fcntl F_GETFL");
  }
  flags = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0) {
    return fail_errno(errno, "fcntl F_SETFL");
  }
  return {};
}

// Polls fd for `events` in slices of 100 ms. True when ready, false on timeout.
Result<bool> wait_ready(int fd, short events, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    UTSUSHI_TRY(check_cancelled());
    // Rounded up: a wait never ends before its deadline.
    auto left = ceil<milliseconds>(deadline - steady_clock::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
    if (r < 0 && errno != EINTR) {
      return fail_errno(errno, "poll");
    }
    if (r > 0) {
      return true;
    }
  }
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view text) {
  HostPort hp;
  std::size_t colon;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close == 1 || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail(Errc::invalid_argument, fmt::format("bad address '{}' (expected [IPV6]:PORT)", text));
    }
    hp.host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return fail(Errc::invalid_argument, fmt::format("bad address '{}' (expected HOST:PORT)", text));
    }
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) {
      return fail(Errc::invalid_argument,
                  fmt::format("bad address '{}' (an IPv6 address needs brackets: [ADDR]:PORT)", text));
    }
  }
  hp.port = std::string(text.substr(colon + 1));
  unsigned port = 0;
  auto [p, ec] = std::from_chars(hp.port.data(), hp.port.data() + hp.port.size(), port);
  if (hp.port.empty() || ec != std::errc() || p != hp.port.data() + hp.port.size() || port > 65535 ||
      hp.port.find_first_not_of("0123456789") != std::string::npos) {
    return fail(Errc::invalid_argument, fmt::format("bad port in '{}' (expected 0 to 65535)", text));
  }
  return hp;
}

std::string format_host_port(const HostPort& hp) {
  if (hp.host.find(':') != std::string::npos) {
    return "[" + hp.host + "]:" + hp.port;
  }
  return hp.host + ":" + hp.port;
}

Result<Fd> tcp_connect(const HostPort& to, milliseconds timeout) {
  auto res = UTSUSHI_TRY(resolve(to, false));
  std::string last = "no address";
  int last_errno = 0;
  for (addrinfo* a = res.get(); a != nullptr; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (!fd) {
      last_errno = errno;
      last = std::strerror(errno);
      continue;
    }
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last_errno = errno;
      last = std::strerror(errno);
      continue;
    }
    if (!UTSUSHI_TRY(wait_ready(fd.get(), POLLOUT, timeout))) {
      last_errno = ETIMEDOUT;
      last = fmt::format("timed out after {} ms", timeout.count());
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last_errno = err;
      last = std::strerror(err);
      continue;
    }
    UTSUSHI_TRY(set_blocking(fd.get(), true));
    tune(fd.get());
    return fd;
  }
  return fail(Errc::unavailable, fmt::format("cannot connect to {}: {}", format_host_port(to), last), last_errno);
}

Result<Listener> Listener::listen(const HostPort& at, int backlog) {
  auto res = UTSUSHI_TRY(resolve(at, true));
  int last = EADDRNOTAVAIL;
  for (addrinfo* a = res.get(); a != nullptr; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) {
      last = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), backlog) != 0) {
      last = errno;
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    Listener l;
    if (ss.ss_family == AF_INET6) {
      l.m_port = ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    } else {
      l.m_port = ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    }
    l.m_fd = std::move(fd);
    return l;
  }
  return fail_errno(last, "cannot listen on " + format_host_port(at));
}

Result<Fd> Listener::accept(milliseconds timeout) {
  if (!UTSUSHI_TRY(wait_ready(m_fd.get(), POLLIN, timeout))) {
    return fail(Errc::unavailable, fmt::format("no connection within {} ms", timeout.count()));
  }
  Fd fd(::accept4(m_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd) {
    // The peer may have gone between poll and accept: transient.
    return fail(Errc::unavailable, fmt::format("accept: {}", std::strerror(errno)), errno);
  }
  tune(fd.get());
  return fd;
}

Result<void> set_receive_timeout(int fd, milliseconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
    return fail_errno(errno, "setsockopt SO_RCVTIMEO");
  }
  return {};
}

Result<void> recv_all(int fd, std::span<std::uint8_t> buf) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::recv(fd, buf.data() + done, buf.size() - done, 0);
    if (n == 0) {
      return fail(Errc::unavailable, "the peer closed the connection");
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return fail(Errc::unavailable, "the peer sent nothing for too long (receive timeout)", errno);
      }
      return fail(Errc::unavailable, fmt::format("connection failed: {}", std::strerror(errno)), errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> send_all(int fd, std::span<const std::uint8_t> buf) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::send(fd, buf.data() + done, buf.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(Errc::unavailable, fmt::format("connection failed: {}", std::strerror(errno)), errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

}  // namespace utsushi::net
