#pragma once
// The three ways to run a migration, as the CLI offers them:
//   send_remote()    source host: QMP + TCP connection to a receiver
//   receive_remote() destination host: listens, authenticates, feeds QEMU
//   migrate_local()  both ends in one process over a socketpair link
// Each returns an Outcome whose Report is complete also on failure.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "utsushi/livemig/handshake.h"
#include "utsushi/livemig/session.h"

namespace utsushi::livemig {

struct SendRemoteOptions {
  std::string qmp_path;
  std::string to;      // HOST:PORT of `livemig receive`
  std::string token;
  std::uint64_t bandwidth = 0;  // link cap, bytes/s (0: none)
  SendOptions send;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
};
Outcome send_remote(const SendRemoteOptions& options);
// send_remote() with a source monitor the caller opened (options.qmp_path is
// not used). `introduce`, when set, runs on the authenticated link before the
// migration starts (libvirt: the domain definition exchange); its failure is
// reported as "refused" and the source is not touched. A sender with
// `introduce` expects a libvirt receiver, one without a QMP receiver; a
// receiver that announced the other kind is refused the same way
// (expect_receiver, handshake.h).
Outcome send_to_receiver(Monitor& source, const SendRemoteOptions& options,
                         const std::function<Result<void>(Link&)>& introduce = {});

struct ReceiveRemoteOptions {
  std::string qmp_path;
  std::string listen;  // ADDR:PORT
  std::string token;
  ReceiveOptions receive;
  // Give up when no sender authenticated within this time.
  std::chrono::milliseconds accept_timeout{std::chrono::minutes(10)};
  // Called once listening, with the bound port (useful with port 0).
  std::function<void(std::uint16_t)> on_listening;
};
Outcome receive_remote(const ReceiveRemoteOptions& options);

struct ServeOptions {
  std::string listen;  // ADDR:PORT
  std::string token;
  unsigned sessions = 1;
  std::chrono::milliseconds accept_timeout{std::chrono::minutes(10)};
  std::function<void(std::uint16_t)> on_listening;
  // Announced to each sender in the handshake (receive_libvirt sets libvirt).
  ReceiverKind kind = ReceiverKind::qmp;
};
// Listens until `sessions` senders have authenticated, and runs `session` for
// each (so sessions overlap), through the link layer's accept loop
// (common/link/server.h: concurrent handshakes under one 15 s deadline each,
// at most 32 unauthenticated connections with the oldest cut for a new one,
// threads joined as they end; no number of bad peers ends the receiver). A
// peer without the token, or one that authenticates after all sessions are
// taken, is refused and does not count. Returns once every session ended
// (handshakes still pending then are cut); an error means listening failed or
// the accept time ran out (or a signal came) before all sessions arrived,
// after those that did ended.
[[nodiscard]] Result<void> serve_sessions(const ServeOptions& options, const std::function<void(Link&)>& session);

struct LocalOptions {
  std::string source_qmp;
  std::string dest_qmp;
  std::uint64_t bandwidth = 0;
  SendOptions send;
  ReceiveOptions receive;
};
Outcome migrate_local(const LocalOptions& options);

}  // namespace utsushi::livemig
