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
#include "utsushi/common/link/json_message.h"
#include "utsushi/common/log.h"
#include "utsushi/common/zstd_stream.h"
#include "utsushi/livemig/disk_session.h"
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

// Feeds QEMU on its own thread so that the link keeps flowing while the
// destination loads pages; at most four batches wait in between. After each
// batch QEMU read it sends the sender a `progress` frame (frame.h): the
// bytes fed so far plus `held` (the batch the receiver holds back until the
// next frame verified). It is the link's only sender while it runs.
// Destroying it stops the thread (unfed batches are dropped).
class Feeder {
 public:
  Feeder(int qemu_fd, milliseconds timeout, Link& link, const std::atomic<std::uint64_t>& held)
      : m_thread([this, qemu_fd, timeout, &link, &held] {
          std::uint64_t fed = 0;
          while (auto b = m_queue.pop()) {
            if (auto r = feed(qemu_fd, *b, timeout); !r) {
              m_queue.fail(r.error());
              return;
            }
            fed += b->size();
            const auto progress = encode_progress(fed + held.load());
            if (auto r = link.send(FrameType::progress, progress); !r) {
              m_queue.fail(r.error());
              return;
            }
          }
        }) {}
  ~Feeder() {
    m_queue.fail(Error(Errc::aborted, "receiver stopped"));
    join();
  }
  Feeder(const Feeder&) = delete;
  Feeder& operator=(const Feeder&) = delete;

  // Blocks while four batches wait; fails once feeding failed.
  [[nodiscard]] Result<void> push(Bytes batch) { return m_queue.push(std::move(batch)); }
  // Waits until every pushed batch was fed; feeding's error if it failed.
  [[nodiscard]] Result<void> finish() {
    m_queue.close();
    join();
    if (auto e = m_queue.error()) {
      return std::unexpected(*e);
    }
    return {};
  }

 private:
  void join() {
    if (m_thread.joinable()) {
      m_thread.join();
    }
  }
  BoundedQueue<Bytes> m_queue{4};
  std::thread m_thread;  // last: starts once the queue exists
};

// Turns verified DATA frames back into QEMU's stream bytes, hashing them.
class StreamDecoder {
 public:
  // Replaces `out` with the stream bytes of DATA frame `f`. Batches are
  // blocks of one zstd stream (frames end when the level changes).
  [[nodiscard]] Result<void> decode(const Frame& f, Bytes& out) {
    m_raw.resize(f.header.raw_len);
    if (f.header.flags & k_frame_zstd) {
      if (auto z = zstd_decompress_exact(m_dctx.get(), f.payload, m_raw, ZstdInput::whole); !z) {
        return std::unexpected(std::move(z).error().with_context(fmt::format("frame {}", f.header.seq)));
      }
    } else {
      if (f.payload.size() != m_raw.size()) {
        return fail(Errc::corruption, "uncompressed frame length mismatch");
      }
      std::memcpy(m_raw.data(), f.payload.data(), m_raw.size());
    }
    out.clear();
    UTSUSHI_TRY(m_tokens.decode(m_raw, out));
    XXH3_64bits_update(m_hash.state.get(), out.data(), out.size());
    return {};
  }
  // Where pages that refer to disk blocks are read (page_codec.h).
  void set_block_source(BlockSource* source) noexcept { m_tokens.set_block_source(source); }
  // XXH3-64 (hex) of every byte decoded so far.
  std::string digest() const { return fmt::format("{:016x}", XXH3_64bits_digest(m_hash.state.get())); }

 private:
  ZstdDCtx m_dctx{ZSTD_createDCtx()};
  TokenDecoder m_tokens;
  HashState m_hash;
  Bytes m_raw;
};

// What the receiver's phases share for one migration. Owned by run_receiver;
// never moved (rep refers into outcome).
struct ReceiveRun {
  ReceiveRun(const ReceiveOptions& o, Monitor& m, Link& l) : options(o), qmp(m), link(l) {}
  ReceiveRun(const ReceiveRun&) = delete;
  ReceiveRun& operator=(const ReceiveRun&) = delete;

  const ReceiveOptions& options;
  Monitor& qmp;
  Link& link;
  Outcome outcome{};
  Report& rep = outcome.report;
  steady_clock::time_point start = steady_clock::now();
  std::optional<Fd> qemu_fd;  // our end of the destination's stream socket
  bool peer_aborted = false;  // the sender sent "abort"
  bool stream_fed = false;    // the whole stream was handed to the destination
  bool committed = false;     // the commit handshake ran ("go" received)
  bool start_on_go = false;   // "go" asked to start the destination
  std::unique_ptr<DiskSink> disks;  // copy_storage, once the sender's disk list came

  // The link figures and total time, as of now.
  void measure() {
    rep.bytes_on_wire = link.bytes_sent() + link.bytes_received();
    rep.total_ms = duration_cast<milliseconds>(steady_clock::now() - start).count();
  }
};

// Phase 1. Announces the mode ("hold"), checks the destination's version,
// keeps it paused after loading when held, and starts its incoming migration
// on a socket (run.qemu_fd).
Result<void> start_incoming(ReceiveRun& run) {
  // The first frame tells the sender whether this destination is held.
  json mode = {{"hold", run.options.hold}, {"copy_storage", run.options.copy_storage}};
  UTSUSHI_TRY_CTX(run.link.send_text(FrameType::mode, mode.dump()), "announcing the mode");
  run.rep.qemu_version = UTSUSHI_TRY(check_qemu_version(run.qmp));
  if (run.options.hold) {
    // While incoming, `stop` only clears QEMU's autostart (as -S does).
    UTSUSHI_TRY_CTX(run.qmp.execute("stop"), "keeping the destination paused after loading");
  }
  std::string fdname = fmt::format("livemig-in-{}", ::getpid());
  run.qemu_fd = UTSUSHI_TRY(hand_socket_to_qemu(run.qmp, fdname));
  UTSUSHI_TRY_CTX(run.qmp.execute("migrate-incoming", {{"uri", "fd:" + fdname}}), "starting the incoming migration");
  return {};
}

// The END frame: the rebuilt stream must match the sender's byte count and
// hash; only then is the held-back last batch fed (run.stream_fed) and the
// destination's socket shut for writing.
Result<void> finish_stream(ReceiveRun& run, const Frame& f, const std::string& digest, Bytes held, Feeder& feeder) {
  if (run.options.copy_storage && !(run.disks && run.disks->finished())) {
    return fail(Errc::corruption, "the stream ended before the disks' end (disk_end)");
  }
  auto end = link::parse_json_object(f.payload, "END");
  std::uint64_t total = run.rep.bytes_to_qemu + held.size();
  run.rep.stream_hash = digest;
  if (!end || end->u64("bytes") != total || end->string("hash") != digest) {
    return fail(Errc::corruption, fmt::format("rebuilt stream differs from the source's ({} bytes, hash {})", total,
                                              digest));
  }
  if (run.disks) {
    // The destination activates its disks when it loads QEMU_VM_EOF, in the
    // held-back batch: its exports go first.
    UTSUSHI_TRY_CTX(run.disks->close(), "removing the destination's disk exports");
    UTSUSHI_LOG_INFO("the destination's disk exports removed");
  }
  run.stream_fed = true;  // from here on the destination may load it all
  UTSUSHI_TRY(feeder.push(std::move(held)));
  UTSUSHI_TRY(feeder.finish());
  run.rep.bytes_to_qemu = total;
  ::shutdown(run.qemu_fd->get(), SHUT_WR);
  return {};
}

// A disk frame (disk_session.h): the disk list opens the destination's
// exports, disk data is written through them, the disks' end verifies the
// hashes and removes the exports.
Result<void> receive_disk_frame(ReceiveRun& run, const Frame& f) {
  if (!run.options.copy_storage) {
    return fail(Errc::corruption, "the sender sends disks, but this receiver was not started with --copy-storage");
  }
  if (f.header.type == FrameType::disks) {
    if (run.disks) {
      return fail(Errc::corruption, "a second disk list");
    }
    auto list = UTSUSHI_TRY(parse_disks_frame(f.text()));
    run.disks = UTSUSHI_TRY(DiskSink::open(run.qmp, std::move(list)));
    UTSUSHI_LOG_DEBUG("the destination's disk exports are open");
    return {};
  }
  if (!run.disks) {
    return fail(Errc::corruption, "disk frames before the disk list");
  }
  if (f.header.type == FrameType::disk_data) {
    return run.disks->write(f.payload);
  }
  UTSUSHI_TRY(run.disks->finish(f.text()));
  UTSUSHI_LOG_INFO("disks verified");
  return {};
}

bool disk_frame(link::MessageType t) {
  return t == FrameType::disks || t == FrameType::disk_data || t == FrameType::disk_end;
}

// Phase 2. Receives DATA frames up to END and feeds the destination only
// bytes whose frames verified: each batch waits until the next frame
// verified, the last until END matched (finish_stream). rep.bytes_to_qemu
// counts what was handed to the feeder.
Result<void> receive_stream(ReceiveRun& run) {
  std::atomic<std::uint64_t> held_bytes{0};
  Feeder feeder(run.qemu_fd->get(), run.options.idle_timeout, run.link, held_bytes);
  StreamDecoder decoder;
  Bytes held;  // the latest batch, fed only once the next frame verified
  for (;;) {
    auto f = UTSUSHI_TRY(run.link.recv(run.options.idle_timeout));
    if (f.header.type == FrameType::abort) {
      run.peer_aborted = true;
      return fail(Errc::aborted, "the sender aborted: " + f.text());
    }
    if (f.header.type == FrameType::end) {
      UTSUSHI_LOG_DEBUG("the stream's end arrived");
      return finish_stream(run, f, decoder.digest(), std::move(held), feeder);
    }
    if (disk_frame(f.header.type)) {
      UTSUSHI_TRY(receive_disk_frame(run, f));
      decoder.set_block_source(run.disks.get());
      continue;
    }
    if (run.options.copy_storage && !run.disks) {
      return fail(Errc::corruption, "memory before the disk list: the sender does not copy the disks");
    }
    if (f.header.type != FrameType::data) {
      return fail(Errc::corruption, fmt::format("unexpected frame type {}", static_cast<int>(f.header.type)));
    }
    Bytes batch;
    UTSUSHI_TRY(decoder.decode(f, batch));
    run.rep.bytes_to_qemu += held.size();
    held_bytes = batch.size();  // (the batch pushed now is counted once fed)
    if (!held.empty()) {
      UTSUSHI_TRY(feeder.push(std::move(held)));
    }
    held = std::move(batch);
  }
}

// Phase 3. Waits for the destination to load the stream; a paused one (held,
// or -S) then runs the commit handshake up to "go" (run.committed).
Result<void> await_commit(ReceiveRun& run) {
  run.rep.source_state = UTSUSHI_TRY(wait_destination_loaded(run.qmp, run.options.resume_timeout));
  UTSUSHI_LOG_DEBUG("the destination loaded the stream ({})", run.rep.source_state);
  if (run.rep.source_state != "paused") {
    return {};
  }
  // Commit handshake: the guest starts only when the sender says so.
  json ready = {{"status", "ready"}, {"bytes_to_qemu", run.rep.bytes_to_qemu}, {"stream_hash", run.rep.stream_hash}};
  UTSUSHI_TRY_CTX(run.link.send_text(FrameType::ready, ready.dump()), "reporting the loaded stream");
  run.rep.held = true;
  auto go = run.link.recv(run.options.go_timeout);
  if (!go) {
    return fail(Errc::unavailable, "no 'go' from the sender (" + go.error().message() +
                                       "): the paused destination is discarded, the source keeps the guest");
  }
  if (go->header.type == FrameType::abort) {
    run.peer_aborted = true;
    return fail(Errc::aborted, "the sender aborted before 'go': " + go->text());
  }
  if (go->header.type != FrameType::go) {
    return fail(Errc::corruption,
                fmt::format("frame type {} where 'go' was expected", static_cast<int>(go->header.type)));
  }
  run.committed = true;
  UTSUSHI_LOG_DEBUG("'go' arrived");
  auto g = link::parse_json_object(go->payload, "go");
  run.start_on_go = !g || g->boolean_or("start", true).value_or(true);
  return {};
}

// A failure before "go": the sender was never told to let go of the guest.
// Discards the destination, and tells the sender what it may do: an abort
// (resume the source) unless the destination had the whole stream and may run.
Outcome fail_uncommitted(ReceiveRun& run, const Error& error) {
  Report& rep = run.rep;
  rep.status = ReportStatus::failed;
  rep.error = error.message();
  run.outcome.error = error;
  if (run.disks) {
    run.disks->abandon();  // the destination's exports go with it
  }
  if (!run.peer_aborted && !run.stream_fed) {
    // The destination cannot have the whole stream: stop the sender at once
    // (one blocked on a full socket fails on the shutdown).
    run.link.send_abort(error.message());
    run.link.shutdown();
  }
  // An incoming QEMU cannot retry: discard it, and say so only when sure. Its
  // stream socket is closed only afterwards, as a second guard: the pump keeps
  // the tail after RAM END (with QEMU_VM_EOF) for the last batch, which is fed
  // only after END verified, but a tail over PageEncoder::k_tail_limit is cut,
  // and a destination that has its EOF finishes loading on a closed socket
  // (and starts, unless held).
  auto d = discard_destination(run.options, run.qmp);
  run.qemu_fd.reset();
  // A held destination never got "go": with autostart off it stays paused
  // whatever happens to this receiver, so the source may take its guest back
  // even when the discard could not be confirmed.
  bool cannot_run = d || run.options.hold;
  if (d) {
    rep.source_state = "discarded";
  } else if (run.options.hold) {
    UTSUSHI_LOG_ERROR("{}", d.error().message());
    rep.source_state = "paused";
    rep.error += "; the destination stays paused (it never got 'go') and must be removed by hand: " +
                 d.error().message();
  } else {
    UTSUSHI_LOG_ERROR("{}", d.error().message());
    rep.status = ReportStatus::unknown;
    rep.source_state = "unknown";
    rep.error += "; " + d.error().message();
  }
  if (!run.peer_aborted && run.stream_fed) {
    // The destination had the whole stream: the sender resumes its source on
    // an abort only, so send one only when the destination cannot run.
    if (cannot_run) {
      run.link.send_abort(rep.error);
    } else if (auto s = run.link.send_text(FrameType::result, json{{"status", "unknown"}, {"error", rep.error}}.dump());
               !s) {
      UTSUSHI_LOG_WARN("could not report the unknown state to the sender: {}", s.error().message());
    }
  }
  run.link.shutdown();
  return std::move(run.outcome);
}

// Phase 4 (committed, "go" asked to start). Starts the destination
// (options.resume, or QMP `cont`). When that reports an error, finds out
// whether it runs anyway (settle_after_go): returns nothing when it runs,
// otherwise the final outcome, after telling the sender in a "running" frame
// ("discarded" with started false, or "unknown"): never a plain abort.
std::optional<Outcome> start_after_go(ReceiveRun& run) {
  Result<void> started;
  if (run.options.resume) {
    started = run.options.resume();
  } else if (auto c = run.qmp.execute("cont"); !c) {
    started = std::unexpected(c.error());
  }
  if (started) {
    run.rep.source_state = "running";
    return std::nullopt;
  }
  UTSUSHI_LOG_WARN("starting the destination after 'go' failed: {}; checking whether it runs",
                   started.error().message());
  auto settled = settle_after_go(run.options, run.qmp);
  std::string why = "starting the destination after 'go' failed (" + started.error().message() + "): " + settled.why;
  if (settled.fate == Fate::running) {
    UTSUSHI_LOG_WARN("{}", why);
    run.rep.source_state = "running";
    return std::nullopt;
  }
  bool gone = settled.fate == Fate::discarded;
  json verdict = {{"status", gone ? "discarded" : "unknown"}, {"error", why}};
  if (gone) {
    verdict["started"] = false;
  }
  if (auto s = run.link.send_text(FrameType::running, verdict.dump()); !s) {
    UTSUSHI_LOG_WARN("could not report the destination's state to the sender: {}", s.error().message());
  }
  run.link.shutdown();
  run.measure();
  run.rep.status = gone ? ReportStatus::failed : ReportStatus::unknown;
  run.rep.source_state = gone ? "discarded" : "unknown";
  run.rep.error = why;
  run.outcome.error = Error(gone ? Errc::aborted : Errc::unavailable, why);
  return std::move(run.outcome);
}

// Phase 5. The destination is in place: reports "ok" to the sender ("result",
// or "running" after "go") with its RESUME timestamp for the downtime.
Outcome succeed(ReceiveRun& run) {
  Report& rep = run.rep;
  json res = {{"status", "ok"}, {"bytes_to_qemu", rep.bytes_to_qemu}, {"dest_state", rep.source_state}};
  if (auto ev = run.qmp.wait_event("RESUME", milliseconds(rep.source_state == "running" ? 2000 : 0)); ev) {
    res["resume_timestamp_us"] = ev->timestamp_us;
  }
  if (!rep.stream_hash.empty()) {
    res["stream_hash"] = rep.stream_hash;
  }
  if (auto s = run.link.send_text(run.committed ? FrameType::running : FrameType::result, res.dump()); !s) {
    UTSUSHI_LOG_WARN("could not report the result to the sender: {}", s.error().message());
  }
  rep.status = ReportStatus::ok;
  rep.converged = true;
  return std::move(run.outcome);
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

namespace {

// The phases in order: start_incoming, receive_stream, await_commit (a
// failure in any of them: fail_uncommitted), start_after_go when committed,
// succeed.
Outcome receive_phases(ReceiveRun& run) {
  auto r = start_incoming(run);
  if (r) {
    r = receive_stream(run);
  }
  if (r) {
    r = await_commit(run);
  }
  run.measure();
  if (!r) {
    return fail_uncommitted(run, r.error());
  }
  if (run.committed && run.start_on_go) {
    if (auto failed = start_after_go(run)) {
      return std::move(*failed);
    }
  }
  return succeed(run);
}

}  // namespace

Outcome run_receiver(const ReceiveOptions& given, Monitor& qmp, Link& link) {
  ReceiveOptions options = given;
  // With disks the destination starts only after they verified and "go" came.
  options.hold = options.hold || options.copy_storage;
  ReceiveRun run(options, qmp, link);
  Outcome out = receive_phases(run);
  if (run.disks) {
    out.report.disks = run.disks->reports();
  }
  return out;
}

}  // namespace utsushi::livemig
