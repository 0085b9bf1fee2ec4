#pragma once
// TCP helpers shared by the network tools (p2v, livemig): HOST:PORT parsing,
// connecting with a timeout, listening, accepting with a timeout, receive
// timeouts, and whole-buffer blocking send/receive. Wire formats stay in the
// tools; nothing here knows about frames.
//
// Sockets returned here are blocking, close-on-exec, with TCP_NODELAY and
// SO_KEEPALIVE set. Waits are polled in slices of at most 100 ms so that
// cancellation (cancel.h) is noticed: a wait interrupted by it fails with
// Errc::cancelled. All functions are safe for concurrent use on different fds.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "utsushi/common/error.h"
#include "utsushi/common/fd.h"

namespace utsushi::net {

// An address as given on a command line. `host` may be a name, an IPv4
// address or an IPv6 address (without brackets), or empty (any address when
// listening, the local host when connecting). `port` is decimal digits.
struct HostPort {
  std::string host;
  std::string port;
};

// Parses "HOST:PORT", "[IPV6]:PORT" or ":PORT" (PORT 0..65535, decimal).
// An IPv6 address must be bracketed: "::1:80" is refused as ambiguous.
// invalid_argument naming `text` otherwise.
[[nodiscard]] Result<HostPort> parse_host_port(std::string_view text);

// "HOST:PORT", brackets around an IPv6 host.
[[nodiscard]] std::string format_host_port(const HostPort& hp);

// Connects to the first address of `to` that accepts within `timeout` (each
// address gets the full timeout). unavailable, naming the address and the
// last reason ("timed out", "Connection refused"), when none does or the name
// does not resolve.
[[nodiscard]] Result<Fd> tcp_connect(const HostPort& to, std::chrono::milliseconds timeout);

// A listening TCP socket (SO_REUSEADDR). Port 0 picks a free port; port()
// tells which.
class Listener {
 public:
  // Binds the first address of `at` that works. The error (from errno: e.g.
  // EADDRINUSE, EACCES) names the address.
  [[nodiscard]] static Result<Listener> listen(const HostPort& at, int backlog = 8);

  // Waits up to `timeout` for one connection: unavailable on timeout,
  // cancelled when cancellation is requested.
  [[nodiscard]] Result<Fd> accept(std::chrono::milliseconds timeout);

  std::uint16_t port() const noexcept { return m_port; }
  int fd() const noexcept { return m_fd.get(); }

 private:
  Fd m_fd;
  std::uint16_t m_port = 0;
};

// Bounds how long one blocking recv() may wait (SO_RCVTIMEO); 0 waits forever.
[[nodiscard]] Result<void> set_receive_timeout(int fd, std::chrono::milliseconds timeout);

// Receives exactly buf.size() bytes (blocking). unavailable when the peer
// closed, the receive timeout expired ("sent nothing for too long") or the
// connection failed.
[[nodiscard]] Result<void> recv_all(int fd, std::span<std::uint8_t> buf);
// Sends all of buf (blocking, no SIGPIPE). unavailable when the connection failed.
[[nodiscard]] Result<void> send_all(int fd, std::span<const std::uint8_t> buf);

}  // namespace utsushi::net
