#pragma once
// The link's accept loop: one listening socket, any number of peers, good
// and bad. Each connection runs its handshake (handshake.h) on a thread of
// its own, under one deadline for the whole handshake; an authenticated link
// then runs its session on that thread. Accepting never waits for a peer.
//
// Bounds, so that no peer, or crowd of peers, can take the server down or
// lock out a real client:
//   - at most max_handshakes unauthenticated connections at once: a new
//     connection beyond that cuts the oldest one (a real client finishes its
//     handshake in a few round trips, so idle or trickling peers are the ones
//     cut), and the threads of cut connections end within 100 ms;
//   - each handshake ends by handshake_timeout, whatever the peer sends;
//   - handshake frames are at most k_handshake_max_payload bytes;
//   - at most max_sessions sessions at once: an authenticated client beyond
//     that is refused in the handshake (unavailable, "busy");
//   - threads are joined as soon as they end, so memory and thread counts
//     stay flat however many connections come and go.
// A session that throws is logged and ended; nothing a peer sends ends the
// server.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "utsushi/common/link/handshake.h"
#include "utsushi/common/net.h"

namespace utsushi::link {

struct ServerOptions {
  Protocol protocol;
  std::string token;
  Bytes greeting;  // AUTH_OK's payload for every client
  LinkOptions link;
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
  unsigned max_handshakes = 32;
  unsigned max_sessions = 1;
  // Stop once this many sessions have been admitted and have ended (0: no limit).
  unsigned total_sessions = 0;
  // Fail when fewer than total_sessions were admitted by then (0: no limit).
  std::chrono::milliseconds accept_timeout{0};
};

// What a session asks of the server when it ends.
enum class AfterSession { serve_on, stop };

class Server {
 public:
  // Binds `at` (port 0 picks a free port: port() tells which).
  [[nodiscard]] static Result<Server> listen(const net::HostPort& at, ServerOptions options);

  std::uint16_t port() const noexcept { return m_listener.port(); }

  // Serves until total_sessions sessions ended, a session returned stop, the
  // accept time ran out (unavailable) or cancellation (cancelled); then cuts
  // the handshakes still running and waits for the sessions still running
  // (which see the cancellation themselves). An error also means accepting
  // failed for good.
  [[nodiscard]] Result<void> run(const std::function<AfterSession(Link&)>& session);

 private:
  Server(net::Listener listener, ServerOptions options) : m_listener(std::move(listener)), m_options(std::move(options)) {}

  net::Listener m_listener;
  ServerOptions m_options;
};

}  // namespace utsushi::link
