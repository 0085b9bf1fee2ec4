#include "utsushi/livemig/endpoints.h"

#include <sys/socket.h>

#include <fmt/core.h>

#include <optional>
#include <thread>

#include "utsushi/common/link/server.h"
#include "utsushi/common/log.h"
#include "utsushi/livemig/disk_session.h"
#include "utsushi/livemig/handshake.h"
#include "utsushi/livemig/page_store.h"
#include "utsushi/livemig/qemu_control.h"
#include "utsushi/livemig/qmp.h"

namespace utsushi::livemig {

using namespace std::chrono;

namespace {

constexpr milliseconds k_qmp_timeout{15000};
constexpr milliseconds k_handshake_timeout{15000};  // the whole handshake

Outcome failure(Error e, ReportStatus status, std::string source = {}) {
  Outcome o;
  o.report.status = status;
  o.report.error = e.message();
  o.report.source_qmp = std::move(source);
  o.report.source_state = "untouched";
  o.error = std::move(e);
  return o;
}

}  // namespace

Outcome send_remote(const SendRemoteOptions& options) {
  auto qmp = QmpClient::connect(options.qmp_path, k_qmp_timeout);
  if (!qmp) {
    return failure(qmp.error(), ReportStatus::failed, options.qmp_path);
  }
  return send_to_receiver(*qmp, options);
}

Outcome send_to_receiver(Monitor& source, const SendRemoteOptions& options,
                         const std::function<Result<void>(Link&)>& introduce) {
  // Refuse before touching anything (and before bothering the receiver).
  if (auto v = preflight_source(source); !v) {
    return failure(v.error(), status_for(v.error()), source.path());
  }
  auto hp = parse_host_port(options.to);
  if (!hp) {
    return failure(hp.error(), ReportStatus::failed, source.path());
  }
  auto fd = tcp_connect(*hp, options.connect_timeout);
  if (!fd) {
    return failure(fd.error(), ReportStatus::failed, source.path());
  }
  Link link(std::move(*fd), {options.bandwidth, seconds(60)});
  auto receiver = handshake_client(link, options.token, k_handshake_timeout);
  if (!receiver) {
    return failure(receiver.error(), ReportStatus::refused, source.path());
  }
  UTSUSHI_LOG_DEBUG("connected to the receiver at {}", options.to);
  auto want = introduce ? ReceiverKind::libvirt : ReceiverKind::qmp;
  if (auto r = expect_receiver(link, want, *receiver, options.to); !r) {
    return failure(r.error(), ReportStatus::refused, source.path());
  }
  if (introduce) {
    if (auto r = introduce(link); !r) {
      return failure(r.error(), ReportStatus::refused, source.path());
    }
  }
  return run_sender(options.send, source, link);
}

Outcome receive_remote(const ReceiveRemoteOptions& options) {
  auto qmp = QmpClient::connect(options.qmp_path, k_qmp_timeout);
  if (!qmp) {
    return failure(qmp.error(), ReportStatus::failed);
  }
  if (auto v = prepare_destination(*qmp); !v) {
    return failure(v.error(), status_for(v.error()));
  }
  // While no sender has come yet: the work a disk session would start with
  // (its memory stream comes only after the disks' bulk pass).
  std::unique_ptr<BackingIndexer> warm;
  if (options.receive.copy_storage) {
    warm = warm_backings(*qmp);
    prefault_page_memory(guest_memory_bytes(*qmp).value_or(0));
  }
  std::optional<Outcome> received;
  ServeOptions serve{options.listen, options.token, 1, options.accept_timeout, options.on_listening};
  auto r = serve_sessions(serve, [&](Link& link) { received = run_receiver(options.receive, *qmp, link); });
  if (received) {
    return std::move(*received);
  }
  auto e = r ? Error(Errc::internal, "no session ran") : r.error();
  return failure(e, e.code() == Errc::cancelled ? ReportStatus::cancelled : ReportStatus::failed);
}

Result<void> serve_sessions(const ServeOptions& options, const std::function<void(Link&)>& session) {
  auto hp = UTSUSHI_TRY(parse_host_port(options.listen));
  link::ServerOptions so;
  so.protocol = k_protocol;
  so.token = options.token;
  so.greeting = receiver_greeting(options.kind);
  so.link = LinkOptions{0, seconds(60)};
  so.handshake_timeout = k_handshake_timeout;
  so.max_sessions = options.sessions;
  so.total_sessions = options.sessions;
  so.accept_timeout = options.accept_timeout;
  auto server = UTSUSHI_TRY(link::Server::listen(hp, std::move(so)));
  UTSUSHI_LOG_INFO("listening on {}:{}", hp.host, server.port());
  if (options.on_listening) {
    options.on_listening(server.port());
  }
  return server.run([&](Link& l) {
    session(l);
    return link::AfterSession::serve_on;
  });
}

Outcome migrate_local(const LocalOptions& options) {
  auto src = QmpClient::connect(options.source_qmp, k_qmp_timeout);
  if (!src) {
    return failure(src.error(), ReportStatus::failed, options.source_qmp);
  }
  if (auto v = preflight_source(*src); !v) {
    return failure(v.error(), status_for(v.error()), options.source_qmp);
  }
  auto dst = QmpClient::connect(options.dest_qmp, k_qmp_timeout);
  if (!dst) {
    return failure(dst.error(), ReportStatus::failed, options.source_qmp);
  }
  if (auto v = prepare_destination(*dst); !v) {
    return failure(v.error(), status_for(v.error()), options.source_qmp);
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    return failure(errno_error(errno, "socketpair"), ReportStatus::failed, options.source_qmp);
  }
  int buf = 512 * 1024;
  for (int fd : sv) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  }
  Link send_link(Fd(sv[0]), {options.bandwidth, seconds(60)});
  Link recv_link(Fd(sv[1]), {0, seconds(60)});
  auto token = random_token();
  if (!token) {
    return failure(token.error(), ReportStatus::failed, options.source_qmp);
  }
  Outcome received;
  std::thread receiver([&] {
    if (auto h = handshake_server(recv_link, *token, k_handshake_timeout, ReceiverKind::qmp); !h) {
      received = failure(h.error(), ReportStatus::failed);
      return;
    }
    received = run_receiver(options.receive, *dst, recv_link);
  });
  Outcome sent;
  if (auto h = handshake_client(send_link, *token, k_handshake_timeout); !h) {
    sent = failure(h.error(), ReportStatus::failed, options.source_qmp);
    send_link.shutdown();
  } else {
    sent = run_sender(options.send, *src, send_link);
  }
  if (sent.error) {
    // Make sure the receiver thread does not wait for frames that never come.
    send_link.shutdown();
  }
  receiver.join();
  sent.report.bytes_to_qemu = received.report.bytes_to_qemu;
  sent.report.dest_stream_hash = received.report.stream_hash;
  sent.report.bytes_on_wire = send_link.bytes_sent() + send_link.bytes_received();
  if (!sent.error && received.error) {
    sent.error = received.error;
    sent.report.status = ReportStatus::failed;
    sent.report.error = received.error->message();
  }
  return sent;
}

}  // namespace utsushi::livemig
