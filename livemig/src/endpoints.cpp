#include "utsushi/livemig/endpoints.h"

#include <sys/socket.h>

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "utsushi/common/log.h"
#include "utsushi/livemig/handshake.h"
#include "utsushi/livemig/qmp.h"

namespace utsushi::livemig {

using namespace std::chrono;

namespace {

constexpr milliseconds k_qmp_timeout{15000};
constexpr milliseconds k_handshake_timeout{15000};
// Connections in their handshake at once; more wait in the listen backlog.
constexpr unsigned k_max_handshakes = 8;
constexpr milliseconds k_accept_slice{200};

Outcome failure(Error e, const char* status, std::string source = {}) {
  Outcome o;
  o.report.status = status;
  o.report.error = e.message();
  o.report.source_qmp = std::move(source);
  o.report.source_state = "untouched";
  o.error = std::move(e);
  return o;
}

const char* status_for(const Error& e) { return e.code() == Errc::not_supported ? "refused" : "failed"; }

}  // namespace

Outcome send_remote(const SendRemoteOptions& options) {
  auto qmp = QmpClient::connect(options.qmp_path, k_qmp_timeout);
  if (!qmp) {
    return failure(qmp.error(), "failed", options.qmp_path);
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
    return failure(hp.error(), "failed", source.path());
  }
  auto fd = tcp_connect(*hp, options.connect_timeout);
  if (!fd) {
    return failure(fd.error(), "failed", source.path());
  }
  Link link(std::move(*fd), {options.bandwidth, seconds(60)});
  auto receiver = handshake_client(link, options.token, k_handshake_timeout);
  if (!receiver) {
    return failure(receiver.error(), "refused", source.path());
  }
  auto want = introduce ? ReceiverKind::libvirt : ReceiverKind::qmp;
  if (auto r = expect_receiver(link, want, *receiver, options.to); !r) {
    return failure(r.error(), "refused", source.path());
  }
  if (introduce) {
    if (auto r = introduce(link); !r) {
      return failure(r.error(), "refused", source.path());
    }
  }
  return run_sender(options.send, source, link);
}

Outcome receive_remote(const ReceiveRemoteOptions& options) {
  auto qmp = QmpClient::connect(options.qmp_path, k_qmp_timeout);
  if (!qmp) {
    return failure(qmp.error(), "failed");
  }
  if (auto v = prepare_destination(*qmp); !v) {
    return failure(v.error(), status_for(v.error()));
  }
  std::optional<Outcome> received;
  ServeOptions serve{options.listen, options.token, 1, options.accept_timeout, options.on_listening};
  auto r = serve_sessions(serve, [&](Link& link) { received = run_receiver(options.receive, *qmp, link); });
  if (received) {
    return std::move(*received);
  }
  auto e = r ? Error(Errc::internal, "no session ran") : r.error();
  return failure(e, e.code() == Errc::cancelled ? "cancelled" : "failed");
}

Result<void> serve_sessions(const ServeOptions& options, const std::function<void(Link&)>& session) {
  auto hp = UTSUSHI_TRY(parse_host_port(options.listen));
  auto listener = UTSUSHI_TRY(Listener::listen(hp));
  UTSUSHI_LOG_INFO("listening on {}:{}", hp.host, listener.port());
  if (options.on_listening) {
    options.on_listening(listener.port());
  }
  // Each connection authenticates on a thread of its own, which then runs
  // its session: a silent peer (port scan, stuck sender) holds only its own
  // thread for the handshake timeout, never the other senders.
  std::mutex mutex;
  std::condition_variable changed;
  unsigned authenticated = 0;  // sessions claimed (guarded by mutex)
  std::atomic<unsigned> handshaking{0};
  std::vector<std::shared_ptr<Link>> pending;  // links still in their handshake (guarded by mutex)
  std::vector<std::thread> running;
  struct Joiner {
    std::vector<std::thread>& threads;
    ~Joiner() {
      for (auto& t : threads) {
        t.join();
      }
    }
  } joiner{running};
  // Runs before the joiner: handshakes still waiting when serving ends fail
  // at once instead of holding the return for their timeout.
  struct PendingCut {
    std::mutex& mutex;
    std::vector<std::shared_ptr<Link>>& links;
    ~PendingCut() {
      std::lock_guard lock(mutex);
      for (auto& l : links) {
        l->shutdown();
      }
    }
  } cut{mutex, pending};
  auto authenticate = [&](std::shared_ptr<Link> link) {
    auto h = handshake_server(*link, options.token, k_handshake_timeout, options.kind);
    bool claimed = false;
    {
      std::lock_guard lock(mutex);
      std::erase(pending, link);
      if (h && authenticated < options.sessions) {
        ++authenticated;
        claimed = true;
      }
      --handshaking;
    }
    changed.notify_all();
    if (!h) {
      // A peer without the right token is refused; keep waiting for the real senders.
      UTSUSHI_LOG_WARN("refused a connection: {}", h.error().message());
    } else if (!claimed) {
      UTSUSHI_LOG_WARN("refused a sender: all {} sessions are taken", options.sessions);
    } else {
      session(*link);
    }
  };
  auto deadline = steady_clock::now() + options.accept_timeout;
  for (;;) {
    {
      std::unique_lock lock(mutex);
      // Bound the connections in their handshake; wait for one to finish.
      changed.wait_until(lock, deadline, [&] {
        return authenticated >= options.sessions || handshaking.load() < k_max_handshakes;
      });
      if (authenticated >= options.sessions) {
        return {};
      }
    }
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) {
      std::lock_guard lock(mutex);
      return fail(Errc::unavailable,
                  fmt::format("only {} of {} senders authenticated in time", authenticated, options.sessions));
    }
    if (handshaking.load() >= k_max_handshakes) {
      continue;
    }
    // Short waits, so the loop sees a handshake that claimed the last session.
    auto fd = listener.accept(std::min(left, k_accept_slice));
    if (!fd) {
      if (fd.error().code() == Errc::unavailable) {
        continue;  // nothing yet, or the peer left before accept
      }
      return std::unexpected(std::move(fd).error());
    }
    auto link = std::make_shared<Link>(std::move(*fd), LinkOptions{0, seconds(60)});
    {
      std::lock_guard lock(mutex);
      pending.push_back(link);
      ++handshaking;
    }
    running.emplace_back(authenticate, std::move(link));
  }
}

Outcome migrate_local(const LocalOptions& options) {
  auto src = QmpClient::connect(options.source_qmp, k_qmp_timeout);
  if (!src) {
    return failure(src.error(), "failed", options.source_qmp);
  }
  if (auto v = preflight_source(*src); !v) {
    return failure(v.error(), status_for(v.error()), options.source_qmp);
  }
  auto dst = QmpClient::connect(options.dest_qmp, k_qmp_timeout);
  if (!dst) {
    return failure(dst.error(), "failed", options.source_qmp);
  }
  if (auto v = prepare_destination(*dst); !v) {
    return failure(v.error(), status_for(v.error()), options.source_qmp);
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    return failure(errno_error(errno, "socketpair"), "failed", options.source_qmp);
  }
  int buf = 512 * 1024;
  for (int fd : sv) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  }
  Link send_link(Fd(sv[0]), {options.bandwidth, seconds(60)});
  Link recv_link(Fd(sv[1]), {0, seconds(60)});
  auto token = random_token();
  if (!token) {
    return failure(token.error(), "failed", options.source_qmp);
  }
  Outcome received;
  std::thread receiver([&] {
    if (auto h = handshake_server(recv_link, *token, k_handshake_timeout, ReceiverKind::qmp); !h) {
      received = failure(h.error(), "failed");
      return;
    }
    received = run_receiver(options.receive, *dst, recv_link);
  });
  Outcome sent;
  if (auto h = handshake_client(send_link, *token, k_handshake_timeout); !h) {
    sent = failure(h.error(), "failed", options.source_qmp);
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
    sent.report.status = "failed";
    sent.report.error = received.error->message();
  }
  return sent;
}

}  // namespace utsushi::livemig
