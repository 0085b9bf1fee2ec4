// Destination side: verifies frames, decodes tokens into QEMU's exact stream
// and feeds the destination QEMU (started with -incoming defer).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include <fmt/core.h>

#include <cstring>
#include <thread>

#include "utsushi/common/handles.h"
#include "utsushi/common/log.h"
#include "utsushi/common/zstd_stream.h"
#include "utsushi/livemig/frame_queue.h"
#include "utsushi/livemig/qemu_control.h"
#include "utsushi/livemig/session.h"

namespace utsushi::livemig {

using namespace std::chrono;
using nlohmann::json;

namespace {

// Writes all of `bytes` to the destination's stream socket (no SIGPIPE; a
// destination that stops reading for `timeout` is an error).
Result<void> feed(int fd, std::span<const std::uint8_t> bytes, milliseconds timeout) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    pollfd p{fd, POLLOUT, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return fail(Errc::unavailable, "the destination QEMU stopped reading the stream");
    }
    ssize_t w = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return fail(Errc::aborted, fmt::format("feeding the destination QEMU: {} (did it exit?)", std::strerror(errno)),
                  errno);
    }
    done += static_cast<std::size_t>(w);
  }
  return {};
}

struct HashState {
  struct Free {
    void operator()(XXH3_state_t* s) const noexcept { XXH3_freeState(s); }
  };
  std::unique_ptr<XXH3_state_t, Free> state{XXH3_createState()};
  HashState() { XXH3_64bits_reset(state.get()); }
};

// Discards the destination and makes sure it is gone: options.discard, or
// QMP `quit` answered by QEMU or met by a monitor that is gone.
Result<void> discard_destination(const ReceiveOptions& options, Monitor& qmp) {
  if (options.discard) {
    return options.discard();
  }
  auto r = qmp.execute("quit");
  if (r || monitor_gone(r.error())) {
    return {};
  }
  return fail(r.error().code(), fmt::format("could not quit the destination QEMU at {} ({}): it may still exist",
                                            qmp.path(), r.error().message()));
}

enum class Fate { running, discarded, unknown };
struct Settled {
  Fate fate;
  std::string why;
};

// After "go", when starting the destination reported an error (its reply may
// have been lost while QEMU did start): finds out whether it runs, and
// discards it for sure if it does not.
Settled settle_after_go(const ReceiveOptions& options, Monitor& qmp) {
  auto run = query_runstate(qmp);
  if (run && *run == "running") {
    return {Fate::running, "it runs"};
  }
  if (!run && !monitor_gone(run.error())) {
    return {Fate::unknown, "its state cannot be read (" + run.error().message() + ")"};
  }
  std::string was = run ? "it is '" + *run + "'" : "its QEMU is gone (" + run.error().message() + ")";
  if (auto d = discard_destination(options, qmp); !d) {
    return {Fate::unknown, was + " and discarding it failed: " + d.error().message()};
  }
  return {Fate::discarded, was + "; not started, discarded"};
}

}  // namespace

Result<std::string> prepare_destination(Monitor& qmp) {
  auto version = UTSUSHI_TRY(check_qemu_version(qmp));
  auto run = UTSUSHI_TRY(query_runstate(qmp));
  if (run != "inmigrate") {
    return fail(Errc::failed_precondition,
                fmt::format("destination QEMU at {} is '{}': start it with -incoming defer", qmp.path(), run));
  }
  UTSUSHI_TRY(force_capabilities(qmp, false));
  return version;
}

Outcome run_receiver(const ReceiveOptions& options, Monitor& qmp, Link& link) {
  Outcome o;
  Report& rep = o.report;
  auto start = steady_clock::now();
  std::optional<Fd> qemu_fd;
  bool peer_aborted = false;

  bool committed = false;    // the commit handshake ran ("go" received)
  bool start_on_go = false;  // "go" asked to start the destination
  bool stream_fed = false;   // the whole stream was handed to the destination

  auto body = [&]() -> Result<void> {
    // The first frame tells the sender whether this destination is held.
    UTSUSHI_TRY_CTX(link.send_text(FrameType::mode, json{{"hold", options.hold}}.dump()), "announcing the mode");
    rep.qemu_version = UTSUSHI_TRY(check_qemu_version(qmp));
    if (options.hold) {
      // While incoming, `stop` only clears QEMU's autostart (as -S does).
      UTSUSHI_TRY_CTX(qmp.execute("stop"), "keeping the destination paused after loading");
    }
    std::string fdname = fmt::format("livemig-in-{}", ::getpid());
    qemu_fd = UTSUSHI_TRY(hand_socket_to_qemu(qmp, fdname));
    UTSUSHI_TRY_CTX(qmp.execute("migrate-incoming", {{"uri", "fd:" + fdname}}), "starting the incoming migration");
    // Feeding QEMU runs on its own thread so the link keeps flowing while
    // the destination loads pages; at most four batches wait in between.
    BoundedQueue<Bytes> to_qemu(4);
    int qfd = qemu_fd->get();
    std::thread feeder([&] {
      while (auto b = to_qemu.pop()) {
        if (auto r = feed(qfd, *b, options.idle_timeout); !r) {
          to_qemu.fail(r.error());
          return;
        }
      }
    });
    struct JoinGuard {
      BoundedQueue<Bytes>& q;
      std::thread& t;
      ~JoinGuard() {
        q.fail(Error(Errc::aborted, "receiver stopped"));
        if (t.joinable()) {
          t.join();
        }
      }
    } guard{to_qemu, feeder};
    ZstdDCtx dctx(ZSTD_createDCtx());
    TokenDecoder decoder;
    HashState hash;
    Bytes raw;
    Bytes out;
    Bytes held;  // the latest batch, fed only once the next frame verified
    for (;;) {
      auto f = UTSUSHI_TRY(link.recv(options.idle_timeout));
      if (f.header.type == FrameType::abort) {
        peer_aborted = true;
        return fail(Errc::aborted, "the sender aborted: " + std::string(f.payload.begin(), f.payload.end()));
      }
      if (f.header.type == FrameType::end) {
        json end = json::parse(std::string(f.payload.begin(), f.payload.end()), nullptr, false);
        std::uint64_t total = rep.bytes_to_qemu + held.size();
        std::string digest = fmt::format("{:016x}", XXH3_64bits_digest(hash.state.get()));
        rep.stream_hash = digest;
        if (end.is_discarded() || end.value("bytes", std::uint64_t{0}) != total ||
            end.value("hash", std::string()) != digest) {
          return fail(Errc::corruption, fmt::format("rebuilt stream differs from the source's ({} bytes, hash {})",
                                                    total, digest));
        }
        stream_fed = true;  // from here on the destination may load it all
        UTSUSHI_TRY(to_qemu.push(std::move(held)));
        to_qemu.close();
        feeder.join();
        if (auto e = to_qemu.error()) {
          return std::unexpected(*e);
        }
        rep.bytes_to_qemu = total;
        ::shutdown(qemu_fd->get(), SHUT_WR);
        break;
      }
      if (f.header.type != FrameType::data) {
        return fail(Errc::corruption, fmt::format("unexpected frame type {}", static_cast<int>(f.header.type)));
      }
      raw.resize(f.header.raw_len);
      if (f.header.flags & k_frame_zstd) {
        // Batches are blocks of one zstd stream (frames end when the level changes).
        if (auto z = zstd_decompress_exact(dctx.get(), f.payload, raw, ZstdInput::whole); !z) {
          return std::unexpected(std::move(z).error().with_context(fmt::format("frame {}", f.header.seq)));
        }
      } else {
        if (f.payload.size() != raw.size()) {
          return fail(Errc::corruption, "uncompressed frame length mismatch");
        }
        std::memcpy(raw.data(), f.payload.data(), raw.size());
      }
      out.clear();
      UTSUSHI_TRY(decoder.decode(raw, out));
      XXH3_64bits_update(hash.state.get(), out.data(), out.size());
      rep.bytes_to_qemu += held.size();
      if (!held.empty()) {
        UTSUSHI_TRY(to_qemu.push(std::move(held)));
      }
      held = std::move(out);
      out = Bytes();
    }
    // Wait for the destination to load and run.
    auto deadline = steady_clock::now() + options.resume_timeout;
    for (;;) {
      auto run = UTSUSHI_TRY_CTX(query_runstate(qmp), "destination QEMU after the stream");
      if (run == "running" || run == "paused") {
        rep.source_state = run;
        break;
      }
      if (run != "inmigrate" && run != "restore-vm" && run != "prelaunch") {
        return fail(Errc::aborted, "destination QEMU ended in state " + run);
      }
      if (steady_clock::now() > deadline) {
        return fail(Errc::unavailable, "destination QEMU did not finish loading in time");
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (rep.source_state == "paused") {
      // Commit handshake: the guest starts only when the sender says so.
      json ready = {{"status", "ready"}, {"bytes_to_qemu", rep.bytes_to_qemu}, {"stream_hash", rep.stream_hash}};
      UTSUSHI_TRY_CTX(link.send_text(FrameType::ready, ready.dump()), "reporting the loaded stream");
      rep.held = true;
      auto go = link.recv(options.go_timeout);
      if (!go) {
        return fail(Errc::unavailable, "no 'go' from the sender (" + go.error().message() +
                                           "): the paused destination is discarded, the source keeps the guest");
      }
      if (go->header.type == FrameType::abort) {
        peer_aborted = true;
        return fail(Errc::aborted, "the sender aborted before 'go': " + go->text());
      }
      if (go->header.type != FrameType::go) {
        return fail(Errc::corruption, fmt::format("frame type {} where 'go' was expected",
                                                  static_cast<int>(go->header.type)));
      }
      committed = true;
      json g = json::parse(go->text(), nullptr, false);
      start_on_go = g.is_discarded() || g.value("start", true);
    }
    return {};
  };

  auto r = body();
  auto finish = [&] {
    rep.bytes_on_wire = link.bytes_sent() + link.bytes_received();
    rep.total_ms = duration_cast<milliseconds>(steady_clock::now() - start).count();
  };
  finish();
  if (!r) {
    // Not committed: the sender was never told to let go of the guest.
    rep.status = "failed";
    rep.error = r.error().message();
    o.error = r.error();
    if (!peer_aborted && !stream_fed) {
      // The destination cannot have the whole stream: stop the sender at
      // once (one blocked on a full socket fails on the shutdown).
      link.send_abort(r.error().message());
      link.shutdown();
    }
    // An incoming QEMU cannot retry: discard it, and say so only when sure.
    // Its stream socket is closed only afterwards, as a second guard: the
    // pump keeps the tail after RAM END (with QEMU_VM_EOF) for the last batch,
    // which is fed only after END verified, but a tail over
    // PageEncoder::k_tail_limit is cut, and a destination that has its EOF
    // finishes loading on a closed socket (and starts, unless held).
    auto d = discard_destination(options, qmp);
    qemu_fd.reset();
    // A held destination never got "go": with autostart off it stays paused
    // whatever happens to this receiver, so the source may take its guest
    // back even when the discard could not be confirmed.
    bool cannot_run = d || options.hold;
    if (d) {
      rep.source_state = "discarded";
    } else if (options.hold) {
      UTSUSHI_LOG_ERROR("{}", d.error().message());
      rep.source_state = "paused";
      rep.error += "; the destination stays paused (it never got 'go') and must be removed by hand: " +
                   d.error().message();
    } else {
      UTSUSHI_LOG_ERROR("{}", d.error().message());
      rep.status = "unknown";
      rep.source_state = "unknown";
      rep.error += "; " + d.error().message();
    }
    if (!peer_aborted && stream_fed) {
      // The destination had the whole stream: the sender resumes its source
      // on an abort only, so send one only when the destination cannot run.
      if (cannot_run) {
        link.send_abort(rep.error);
      } else if (auto s = link.send_text(FrameType::result,
                                         json{{"status", "unknown"}, {"error", rep.error}}.dump());
                 !s) {
        UTSUSHI_LOG_WARN("could not report the unknown state to the sender: {}", s.error().message());
      }
    }
    link.shutdown();
    return o;
  }
  if (committed && start_on_go) {
    // From here on never a plain abort: the sender may resume its source
    // only when the destination is known not to run (session.h).
    Result<void> started;
    if (options.resume) {
      started = options.resume();
    } else if (auto c = qmp.execute("cont"); !c) {
      started = std::unexpected(c.error());
    }
    if (started) {
      rep.source_state = "running";
    } else {
      UTSUSHI_LOG_WARN("starting the destination after 'go' failed: {}; checking whether it runs",
                       started.error().message());
      auto settled = settle_after_go(options, qmp);
      std::string why = "starting the destination after 'go' failed (" + started.error().message() + "): " +
                        settled.why;
      if (settled.fate == Fate::running) {
        UTSUSHI_LOG_WARN("{}", why);
        rep.source_state = "running";
      } else {
        bool gone = settled.fate == Fate::discarded;
        json verdict = {{"status", gone ? "discarded" : "unknown"}, {"error", why}};
        if (gone) {
          verdict["started"] = false;
        }
        if (auto s = link.send_text(FrameType::running, verdict.dump()); !s) {
          UTSUSHI_LOG_WARN("could not report the destination's state to the sender: {}", s.error().message());
        }
        link.shutdown();
        finish();
        rep.status = gone ? "failed" : "unknown";
        rep.source_state = gone ? "discarded" : "unknown";
        rep.error = why;
        o.error = Error(gone ? Errc::aborted : Errc::unavailable, why);
        return o;
      }
    }
  }
  json res = {{"status", "ok"}, {"bytes_to_qemu", rep.bytes_to_qemu}, {"dest_state", rep.source_state}};
  if (auto ev = qmp.wait_event("RESUME", milliseconds(rep.source_state == "running" ? 2000 : 0)); ev) {
    res["resume_timestamp_us"] = ev->timestamp_us;
  }
  if (!rep.stream_hash.empty()) {
    res["stream_hash"] = rep.stream_hash;
  }
  if (auto s = link.send_text(committed ? FrameType::running : FrameType::result, res.dump()); !s) {
    UTSUSHI_LOG_WARN("could not report the result to the sender: {}", s.error().message());
  }
  rep.status = "ok";
  rep.converged = true;
  return o;
}

}  // namespace utsushi::livemig
