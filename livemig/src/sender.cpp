// Source side: drives QEMU's migration (the pump, pump.h, carries its
// stream), applies the policy and restores the source on failure.
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/core.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "utsushi/common/cancel.h"
#include "utsushi/common/handles.h"
#include "utsushi/common/link/json_message.h"
#include "utsushi/common/log.h"
#include "utsushi/livemig/disk_precopy.h"
#include "utsushi/livemig/disk_session.h"
#include "utsushi/livemig/first_pass_hold.h"
#include "utsushi/livemig/page_store.h"
#include "utsushi/livemig/peer_inbox.h"
#include "utsushi/livemig/qemu_control.h"
#include "utsushi/livemig/session.h"

#include "pump.h"

namespace utsushi::livemig {

using namespace std::chrono;
using nlohmann::json;

namespace {

void copy_pump_result(const PumpResult& pr, Report& rep) {
  rep.bytes_from_qemu = pr.bytes;
  rep.kinds = pr.kinds;
  rep.sections = pr.summary.sections;
  rep.level_bytes = pr.level_bytes;
  rep.data_frames = pr.data_frames;
  rep.data_payload_bytes = pr.data_payload;
  rep.link_busy_ms = static_cast<std::int64_t>(pr.ship_ms);
  rep.qemu_wait_ms = static_cast<std::int64_t>(pr.qemu_wait_ms);
  rep.flow_wait_ms = static_cast<std::int64_t>(pr.flow_wait_ms);
  if (pr.bytes > 0) {
    rep.stream_hash = fmt::format("{:016x}", pr.hash);
  }
}

std::int64_t ms_since(steady_clock::time_point t) {
  return duration_cast<milliseconds>(steady_clock::now() - t).count();
}

}  // namespace

Result<std::string> preflight_source(Monitor& qmp) {
  auto version = UTSUSHI_TRY(check_qemu_version(qmp));
  auto run = UTSUSHI_TRY(query_runstate(qmp));
  if (run != "running" && run != "paused") {
    return fail(Errc::failed_precondition, fmt::format("source guest at {} is '{}', not running", qmp.path(), run));
  }
  auto st = UTSUSHI_TRY(query_migration(qmp));
  if (st.status == "active" || st.status == "setup" || st.status == "cancelling" || st.status == "device" ||
      st.status == "pre-switchover" || st.status == "postcopy-active") {
    return fail(Errc::failed_precondition, fmt::format("a migration is already {} on {}", st.status, qmp.path()));
  }
  return version;
}

namespace {

// Why a phase stopped the migration, and the status the report gets.
struct Failure {
  Error error;
  ReportStatus status = ReportStatus::failed;
};

// What the sender's phases share for one migration. Owned by run_sender;
// never moved (rep refers into outcome).
struct SendRun {
  SendRun(const SendOptions& o, Monitor& m, Link& l) : options(o), serial_qmp(m), qmp(serial_qmp), link(l) {}
  SendRun(const SendRun&) = delete;
  SendRun& operator=(const SendRun&) = delete;

  const SendOptions& options;
  SerialMonitor serial_qmp;  // the disks' pre-copy thread swaps bitmaps while this one polls
  Monitor& qmp;
  Link& link;
  PeerInbox inbox{link};  // what the receiver sends once the session runs
  Outcome outcome{};
  Report& rep = outcome.report;
  steady_clock::time_point start = steady_clock::now();  // reset when `migrate` is sent
  steady_clock::time_point disks_start = start;            // --copy-storage: the disk copy's start
  bool hold = false;          // the receiver holds its destination paused (its "mode")
  bool was_running = false;   // the source guest ran when the migration started
  std::optional<QmpEvent> stop_before;  // the latest STOP before this migration's
  std::optional<Fd> sock;     // our end of QEMU's stream socket
  std::unique_ptr<DiskSource> disks;  // --copy-storage
  std::unique_ptr<DiskPrecopy> precopy;  // its pre-copy while it runs; ends before `disks`
  FirstPassHold first_pass_hold{serial_qmp};  // released once `precopy` ended (never held without disks)
  std::mutex send_lock;       // one sender on the link at a time: the pump's shipper or the final disk pass

  // Sends one frame under send_lock (the disk passes' frames).
  FrameSend locked_send() {
    return [this](FrameType type, std::span<const std::uint8_t> payload) -> Result<void> {
      std::lock_guard lock(send_lock);
      return link.send(type, payload);
    };
  }

  // Ends the run as failed: fills the report's status, error and link figures.
  Outcome fail(Failure f) {
    rep.status = f.status;
    rep.error = f.error.message();
    outcome.error = std::move(f.error);
    rep.bytes_on_wire = link.bytes_sent() + link.bytes_received();
    rep.frames = link.frames_sent();
    rep.frames_received = link.frames_received();
    if (rep.total_ms < 0) {
      rep.total_ms = ms_since(first_start());
    }
    return std::move(outcome);
  }
  // Where total_ms counts from: the disk copy when there is one, else `migrate`.
  steady_clock::time_point first_start() const { return disks ? disks_start : start; }
  // Tells the receiver why before failing (a phase that failed on this side).
  Outcome abort_and_fail(Failure f) {
    if (stop_precopy(std::chrono::seconds(2))) {
      link.send_abort(f.error.message());
    }
    return fail(std::move(f));
  }
  // Asks the disks' pre-copy (if it runs) to stop and waits up to `limit`
  // for it; true when it ended (then `precopy` is gone).
  bool stop_precopy(milliseconds limit) {
    if (!precopy) {
      return true;
    }
    precopy->stop();
    for (auto until = steady_clock::now() + limit; !precopy->done() && steady_clock::now() < until;) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (!precopy->done()) {
      return false;
    }
    (void)precopy->join();
    precopy.reset();
    return true;
  }
};

// The pump (pump.h) on its own thread, and what the supervisor reads of it.
class PumpThread {
 public:
  PumpThread(int qemu_fd, Link& link, PeerInbox& inbox, const SendOptions& options, std::mutex& send_lock,
             const SentBlocks* disk_blocks, std::function<void()> first_pass_near_end)
      : m_thread([this, qemu_fd, &link, &inbox, &options, &send_lock, disk_blocks,
                  hook = std::move(first_pass_near_end)]() mutable {
          pump(qemu_fd, link, inbox, options, m_stop, m_result, m_progress, send_lock, disk_blocks, std::move(hook));
          m_done = true;
        }) {}
  ~PumpThread() { join(); }
  PumpThread(const PumpThread&) = delete;
  PumpThread& operator=(const PumpThread&) = delete;

  bool done() const { return m_done.load(); }
  // The pump ended with the END frame handed to the link.
  bool delivered() const { return done() && m_result.stream_complete; }
  // Valid once done().
  const std::optional<Error>& error() const { return m_result.error; }
  std::uint64_t bytes_read() const { return m_progress.bytes.load(); }
  std::uint64_t pages_read() const { return m_progress.pages.load(); }
  // Asks the pump to stop and waits up to `limit`; true when it ended.
  bool stop_within(milliseconds limit) {
    m_stop = true;
    for (auto until = steady_clock::now() + limit; !done() && steady_clock::now() < until;) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    return done();
  }
  // Waits for the thread; then result() is final.
  const PumpResult& join() {
    if (m_thread.joinable()) {
      m_thread.join();
    }
    return m_result;
  }

 private:
  std::atomic<bool> m_stop{false};
  std::atomic<bool> m_done{false};
  PumpProgress m_progress;
  PumpResult m_result;
  std::thread m_thread;  // last: starts once the members above exist
};

// What the receiver's mode frame announces.
struct ReceiverMode {
  bool hold = false;
  bool copy_storage = false;
};
// The receiver's mode frame; Errc::corruption (never an exception) for one
// that is not an object or whose fields are not booleans.
Result<ReceiverMode> parse_mode(const Frame& f) {
  auto m = UTSUSHI_TRY(link::parse_json_object(f.payload, "the receiver's mode frame"));
  ReceiverMode out;
  out.hold = UTSUSHI_TRY(m.boolean_or("hold", false));
  out.copy_storage = UTSUSHI_TRY(m.boolean_or("copy_storage", false));
  return out;
}

// Phase 1. Checks the source (preflight_source) and reads the receiver's
// "mode" frame (run.hold). Changes nothing on the source.
std::optional<Outcome> check_ends(SendRun& run) {
  auto version = preflight_source(run.qmp);
  if (!version) {
    return run.abort_and_fail({version.error(), status_for(version.error())});
  }
  run.rep.qemu_version = *version;
  auto mode = run.link.recv(run.options.mode_timeout);
  if (!mode) {
    return run.fail({mode.error()});
  }
  if (mode->header.type == FrameType::abort) {
    return run.fail({Error(Errc::aborted, "the receiver refused: " + mode->text())});
  }
  if (mode->header.type != FrameType::mode) {
    return run.abort_and_fail({Error(Errc::corruption, "the receiver did not announce its mode")});
  }
  auto announced = parse_mode(*mode);
  if (!announced) {
    return run.abort_and_fail({announced.error()});
  }
  run.hold = announced->hold;
  UTSUSHI_LOG_DEBUG("the source QEMU checked; the receiver's mode: hold {}, copy_storage {}", announced->hold,
                    announced->copy_storage);
  bool our_disks = !run.options.copy_storage.empty();
  if (announced->copy_storage != our_disks) {
    return run.abort_and_fail(
        {Error(Errc::invalid_argument, our_disks ? "the receiver was not started with --copy-storage: it cannot take "
                                                   "the disks; start it with --copy-storage"
                                                 : "the receiver was started with --copy-storage: give the sender "
                                                   "--copy-storage too (or start the receiver without it)"),
         ReportStatus::refused});
  }
  return std::nullopt;
}

// Until the stream's end the receiver sends nothing but its progress and an
// abort: the abort's reason, when one arrives within `wait`, as the error to
// report.
std::optional<Error> receiver_abort(PeerInbox& inbox, milliseconds wait) {
  if (!inbox.poll(wait)) {
    return std::nullopt;  // the caller's own error says what went wrong with the link
  }
  if (auto reason = inbox.abort_reason()) {
    return Error(Errc::aborted, "the receiver stopped the migration: " + *reason);
  }
  return std::nullopt;
}

// Phase 1b (--copy-storage). Picks the disks, starts the source's NBD server
// and dirty tracking (run.disks), announces the disks and starts their
// pre-copy (run.precopy, disk_precopy.h: pass 0, then dirty passes until one
// is small) on a thread of its own; returns once the bulk pass has about
// memory_lead() left (or the pre-copy ended), so that QEMU's first memory pass
// overlaps the bulk's tail. The guest runs on and its writes go to the next
// pass. On failure the receiver got an abort; run_sender removes the exports.
std::optional<Outcome> copy_disks(SendRun& run) {
  run.disks_start = steady_clock::now();
  auto started = [&]() -> Result<void> {
    auto chosen = UTSUSHI_TRY(source_disks(run.qmp, run.options.copy_storage));
    const LevelBounds bounds = level_bounds(run.options.zstd_level, run.options.zstd_max_level);
    UTSUSHI_LOG_DEBUG("the disks described, their backing files hashed");
    run.disks = UTSUSHI_TRY(DiskSource::open(run.qmp, std::move(chosen), bounds.min, bounds.max));
    UTSUSHI_LOG_DEBUG("the source's NBD server, exports and dirty bitmaps started");
    std::string list = disks_frame_text(run.disks->disks());
    UTSUSHI_TRY(run.link.send_text(FrameType::disks, list));
    // Without the guest's size (a heuristic's input) the memory waits for the bulk pass.
    auto memory = guest_memory_bytes(run.qmp);
    if (!memory) {
      UTSUSHI_LOG_DEBUG("the guest's memory size: {}", memory.error().message());
    }
    const milliseconds lead = memory_lead(memory.value_or(0));
    // The page store fills in QEMU's first pass: fault its memory in while the bulk pass has CPU to spare.
    prefault_page_memory(memory.value_or(0));
    FrameSend locked = run.locked_send();
    // A receiver that failed (its disk full, say) stops the copy at the next
    // batch. (It sends nothing else until the stream's end, by which time
    // the pre-copy has ended.)
    FrameSend send = [&run, locked](FrameType type, std::span<const std::uint8_t> payload) -> Result<void> {
      if (auto e = receiver_abort(run.inbox, milliseconds(0))) {
        return std::unexpected(std::move(*e));
      }
      return locked(type, payload);
    };
    run.precopy = std::make_unique<DiskPrecopy>(*run.disks, std::move(send), run.options);
    while (!run.precopy->done()) {
      if (cancel_requested()) {
        run.precopy->stop();
        (void)run.precopy->join();
        return fail(Errc::cancelled, "cancelled by signal");
      }
      if (auto left = run.precopy->bulk_time_left(); left && *left <= lead) {
        UTSUSHI_LOG_INFO("starting QEMU's migration with about {} ms of the disks' bulk pass left", left->count());
        return {};
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    auto copied = run.precopy->join();
    run.precopy.reset();
    return copied;
  }();
  if (!started) {
    const bool stopped = run.stop_precopy(seconds(2));
    Error error = started.error();
    if (error.code() != Errc::aborted && stopped) {
      // A link error: the receiver's abort, when it sent one, says why.
      error = receiver_abort(run.inbox, milliseconds(300)).value_or(std::move(error));
    }
    run.rep.source_state = query_runstate(run.qmp).value_or("unknown");  // QEMU's migration never started
    return run.abort_and_fail({error, status_for(error)});
  }
  return std::nullopt;
}

// While QEMU's migration runs and the disks' pre-copy has not ended: nothing
// while it runs; its failure once it ended (then run.precopy is gone).
std::optional<Failure> check_precopy(SendRun& run) {
  if (!run.precopy || !run.precopy->done()) {
    return std::nullopt;
  }
  auto r = run.precopy->join();
  run.precopy.reset();
  if (!r) {
    return Failure{r.error(), status_for(r.error())};
  }
  if (auto released = run.first_pass_hold.release(); !released) {
    return Failure{released.error(), status_for(released.error())};
  }
  return std::nullopt;
}

// While QEMU's memory passes run (--copy-storage): a dirty pass of the disks
// at most every k_follow_interval, so that the stopped phase carries only what
// the guest wrote since the last one, not everything since memory started. On
// supervise's thread (the monitor has one user); a pass holds one interval's
// writes, so it delays the next status poll little.
constexpr milliseconds k_follow_interval{250};

std::optional<Failure> follow_disks(SendRun& run) {
  auto r = [&]() -> Result<void> {
    UTSUSHI_TRY(run.disks->next_pass());
    UTSUSHI_TRY(run.disks->send_pass(run.locked_send(), "follow"));
    return {};
  }();
  if (!r) {
    return Failure{r.error(), status_for(r.error())};
  }
  return std::nullopt;
}

// With disks, in QEMU's pre-switchover (the guest stopped, the disks still
// the source's): the final dirty pass, the disks' hashes, the source's
// exports and bitmaps removed, then QEMU continues its switch-over.
std::optional<Failure> final_disk_pass(SendRun& run) {
  if (run.precopy) {
    // QEMU switched over although the policy held it: the rest of the
    // pre-copy goes in the downtime.
    UTSUSHI_LOG_WARN("QEMU stopped the guest before the disks' pre-copy ended; it ends in the downtime");
    auto r = run.precopy->join();
    run.precopy.reset();
    if (!r) {
      return Failure{r.error(), status_for(r.error())};
    }
  }
  if (auto released = run.first_pass_hold.release(); !released) {
    return Failure{released.error(), status_for(released.error())};
  }
  auto r = [&]() -> Result<void> {
    if (run.disks) {
      FrameSend send = run.locked_send();
      UTSUSHI_TRY(run.disks->next_pass());
      UTSUSHI_TRY(run.disks->send_pass(send, "final"));
      UTSUSHI_TRY(run.disks->send_end(send));
      UTSUSHI_TRY_CTX(run.disks->stop(), "removing the source's disk exports");
    }
    UTSUSHI_TRY_CTX(run.qmp.execute("migrate-continue", {{"state", "pre-switchover"}}), "continuing the switch-over");
    return {};
  }();
  if (!r) {
    return Failure{r.error(), status_for(r.error())};
  }
  return std::nullopt;
}

// Phase 2. Forces capabilities and parameters, hands QEMU one end of a socket
// (run.sock) and sends `migrate`; run.start is then the migration's start.
// On failure QEMU's migration has not started and the receiver got an abort.
std::optional<Outcome> start_migration(SendRun& run) {
  const PolicyConfig& pol = run.options.policy;
  run.was_running = query_runstate(run.qmp).value_or("running") == "running";
  run.rep.downtime_limit_ms = qemu_downtime_limit(pol, pol.downtime_ms);
  if (auto r = force_capabilities(run.qmp, pol.auto_converge); !r) {
    return run.abort_and_fail({r.error()});
  }
  if (auto r = set_source_parameters(run.qmp, {run.rep.downtime_limit_ms, pol.max_cpu_throttle}); !r) {
    return run.abort_and_fail({r.error()});
  }
  if (run.disks) {
    // The final disk pass runs while QEMU waits before its switch-over.
    json caps = json::array({{{"capability", "pause-before-switchover"}, {"state", true}}});
    if (auto r = run.qmp.execute("migrate-set-capabilities", {{"capabilities", caps}}); !r) {
      return run.abort_and_fail({r.error()});
    }
  }
  std::string fdname = fmt::format("livemig-out-{}", ::getpid());
  auto sock = hand_socket_to_qemu(run.qmp, fdname);
  if (!sock) {
    return run.abort_and_fail({sock.error()});
  }
  run.sock = std::move(*sock);
  (void)run.qmp.poll_events();
  // The downtime is measured from the STOP this migration causes, not from an
  // earlier one (a guest paused before): remember the latest STOP so far.
  run.stop_before = run.qmp.last_event("STOP");
  run.start = steady_clock::now();
  if (auto r = run.qmp.execute("migrate", {{"uri", "fd:" + fdname}}); !r) {
    (void)run.qmp.execute("closefd", {{"fdname", fdname}});
    return run.abort_and_fail({r.error()});
  }
  UTSUSHI_LOG_INFO("migration started from {} (QEMU {})", run.qmp.path(), run.rep.qemu_version);
  return std::nullopt;
}

// Applies the policy's decision for this poll (policy.h): a Failure with
// status timeout when it cancels; sets QEMU's downtime limit when it says so.
std::optional<Failure> apply_policy(SendRun& run, const PolicyConfig& config, PolicyState& pstate,
                                    const MigrationStatus& st, const PumpThread& pump) {
  PageSample sample{duration_cast<milliseconds>(steady_clock::now() - run.start), pump.pages_read(),
                    run.precopy != nullptr};
  auto d = decide(config, pstate, st, sample);
  if (d.action == PolicyAction::cancel) {
    return Failure{Error(Errc::aborted, d.reason), ReportStatus::timeout};
  }
  if (d.action == PolicyAction::raise_downtime) {
    UTSUSHI_LOG_WARN("{}", d.reason);
  } else if (d.action == PolicyAction::set_limit) {
    UTSUSHI_LOG_DEBUG("{}", d.reason);
  }
  if (d.action == PolicyAction::raise_downtime || d.action == PolicyAction::set_limit) {
    if (run.qmp.execute("migrate-set-parameters", {{"downtime-limit", d.qemu_limit_ms}})) {
      run.rep.downtime_limit_ms = d.qemu_limit_ms;
    }
  }
  run.rep.policy_steps = pstate.steps;
  return std::nullopt;
}

// How often supervise() polls QEMU: every 100 ms; once the disks' pre-copy
// ended, every 20 ms, because QEMU then waits in pre-switchover with the
// guest stopped and the poll's lag is downtime; every 20 ms too while the
// first pass is held, because the hold's end waits for the poll that sees
// the pre-copy's end; every 10 ms once QEMU completed.
milliseconds poll_interval(const SendRun& run, bool qemu_completed) {
  if (qemu_completed) {
    return milliseconds(10);
  }
  const bool soon = run.disks && (!run.precopy || run.first_pass_hold.held());
  return soon ? milliseconds(20) : milliseconds(100);
}

// Phase 3. Watches QEMU's migration (poll_interval) while the pump carries
// the stream, until QEMU completed and the pump ended.
// Returns what stopped it otherwise: the pump's error (refused for a stream
// it cannot carry), QEMU's own failure, the policy's time limit (timeout),
// SIGINT (cancelled). Cleans nothing up: abandon() does.
std::optional<Failure> supervise(SendRun& run, PumpThread& pump) {
  PolicyConfig policy = run.options.policy;
  policy.pace_switchover = run.disks != nullptr;
  PolicyState pstate;
  pstate.target_ms = policy.downtime_ms;
  pstate.qemu_limit_ms = run.rep.downtime_limit_ms;
  bool qemu_completed = false;
  bool switched = false;  // the final disk pass ran and QEMU continued
  auto last_follow = steady_clock::now();
  for (;;) {
    if (auto f = check_precopy(run)) {
      return f;
    }
    if (pump.done() && pump.error()) {
      const Error& e = *pump.error();
      return Failure{e, status_for(e)};
    }
    auto st = query_migration(run.qmp);
    if (!st) {
      return Failure{st.error()};
    }
    if (st->dirty_sync_count > run.rep.rounds) {
      UTSUSHI_LOG_DEBUG("QEMU's dirty sync {}: {} bytes remain, {} pages read", st->dirty_sync_count, st->remaining,
                        pump.pages_read());
    }
    run.rep.rounds = std::max(run.rep.rounds, st->dirty_sync_count);
    if (st->status == "pre-switchover" && !switched) {
      UTSUSHI_LOG_DEBUG("QEMU waits before its switch-over");
      switched = true;
      if (auto f = final_disk_pass(run)) {
        return f;
      }
      continue;
    }
    if (st->status == "completed") {
      if (!qemu_completed) {
        UTSUSHI_LOG_DEBUG("QEMU's migration completed");
      }
      qemu_completed = true;
      if (pump.done()) {
        return std::nullopt;
      }
    } else if (st->status == "failed" || st->status == "cancelled") {
      // Let the pump report its own (usually more precise) error first.
      std::this_thread::sleep_for(milliseconds(200));
      if (pump.done() && pump.error()) {
        continue;
      }
      return Failure{Error(Errc::aborted, fmt::format("QEMU migration {}: {}", st->status, st->error))};
    }
    if (cancel_requested()) {
      return Failure{Error(Errc::cancelled, "cancelled by signal"), ReportStatus::cancelled};
    }
    if (!qemu_completed && !switched) {
      if (auto f = apply_policy(run, policy, pstate, *st, pump)) {
        return f;
      }
      if (run.disks && !run.precopy && st->status == "active" &&
          steady_clock::now() - last_follow >= k_follow_interval) {
        if (auto f = follow_disks(run)) {
          return f;
        }
        last_follow = steady_clock::now();
      }
    }
    std::this_thread::sleep_for(poll_interval(run, qemu_completed));
  }
}

// After a failure before the whole stream reached the link: stops the pump,
// tells the receiver (when the link can still carry it), shuts the link and
// QEMU's socket, and gives the source back its guest.
Outcome abandon(SendRun& run, Failure failure, PumpThread& pump) {
  Error& error = failure.error;
  // The link has one reader and one sender at a time: the disks' pre-copy
  // (which reads the receiver's abort and sends) ends first.
  const bool precopy_stopped = run.stop_precopy(seconds(2));
  if (precopy_stopped && (error.code() == Errc::unavailable || error.code() == Errc::aborted)) {
    // The receiver usually says why it stopped: prefer its reason.
    if (auto peer = run.inbox.next(milliseconds(300)); peer && peer->header.type == FrameType::abort) {
      error = Error(Errc::aborted, "the receiver stopped the migration: " + peer->text());
    }
  }
  // Stop the pump (and so its shipper thread) before the abort goes out on
  // this thread. A shipper stuck in send (the peer stopped reading) does not
  // end by itself: then the link is shut down without an abort (the peer
  // sees it drop).
  if (pump.stop_within(seconds(2)) && precopy_stopped) {
    run.link.send_abort(error.message());
  }
  run.link.shutdown();
  run.precopy.reset();  // its sends fail on the shut link
  // Close our end of QEMU's stream socket so QEMU's writer (and a return-path
  // reader, if one was opened) fail at once.
  ::shutdown(run.sock->get(), SHUT_RDWR);
  auto restored = run.was_running ? restore_source(run.qmp, seconds(30)) : query_runstate(run.qmp);
  copy_pump_result(pump.join(), run.rep);
  run.rep.source_state = restored.value_or("unknown");
  if (!restored) {
    UTSUSHI_LOG_ERROR("could not restore the source guest: {}", restored.error().message());
  }
  return run.fail(std::move(failure));
}

// The receiver's verdict says the destination did not start: resume the source.
Outcome resume_source(SendRun& run, Error e) {
  auto restored = run.was_running ? restore_source(run.qmp, seconds(30)) : query_runstate(run.qmp);
  run.rep.source_state = restored.value_or("unknown");
  return run.fail({std::move(e)});
}

// The destination's state is not known: the source stays paused, status unknown.
Outcome leave_paused(SendRun& run, const std::string& what) {
  run.rep.source_state = query_runstate(run.qmp).value_or("unknown");
  return run.fail({Error(Errc::unavailable,
                         what + ". The source is left paused: check the destination (QMP query-status, or virsh "
                                "domstate for a libvirt domain); if it runs, quit the source; if it is gone or "
                                "paused, discard it and resume the source (cont)"),
                   ReportStatus::unknown});
}

// No verdict arrived after the whole stream was delivered.
Outcome verdict_lost(SendRun& run, const Error& why) {
  if (run.hold) {
    // The destination is paused and will never get "go": the guest stays here.
    return resume_source(run, Error(Errc::unavailable, "the receiver never reported the stream loaded (" +
                                                           why.message() +
                                                           "); the held destination is discarded by its receiver and "
                                                           "the source was resumed"));
  }
  run.rep.source_state = query_runstate(run.qmp).value_or("unknown");
  return run.fail({Error(Errc::unavailable, "the stream was delivered but the receiver's verdict never arrived (" +
                                                why.message() +
                                                "); the destination may have started on its own (no --hold): the "
                                                "source is left paused: check the destination"),
                   ReportStatus::unknown});
}

// The commit: after "ready", sends "go" (from here on the destination may run)
// and returns the receiver's "running" frame, or what to report as unknown.
std::expected<Frame, std::string> commit(SendRun& run) {
  run.rep.held = true;
  bool go_sent = static_cast<bool>(run.link.send_text(FrameType::go, json{{"start", run.was_running}}.dump()));
  Result<Frame> running = fail(Errc::unavailable, "link lost");
  if (go_sent) {
    running = run.inbox.next(run.options.running_timeout);
  }
  run.rep.bytes_on_wire = run.link.bytes_sent() + run.link.bytes_received();
  if (!go_sent || !running) {
    return std::unexpected(std::string(go_sent ? "'go' was sent" : "sending 'go' failed") +
                           " but the destination's 'running' never arrived (" + running.error().message() +
                           "): the destination runs if 'go' reached it and was discarded if not");
  }
  return std::move(*running);
}

// Success: the destination runs. Fills the report, measures the downtime
// (this migration's STOP to the destination's RESUME) and retires the source.
Outcome succeed(SendRun& run, const link::JsonMessage& msg) {
  Report& rep = run.rep;
  rep.status = ReportStatus::ok;
  rep.converged = true;
  rep.frames = run.link.frames_sent();
  rep.frames_received = run.link.frames_received();
  rep.bytes_to_qemu = msg.u64_or("bytes_to_qemu", 0).value_or(0);
  rep.total_ms = ms_since(run.first_start());
  const auto resume_us = static_cast<std::int64_t>(
      std::min<std::uint64_t>(msg.u64_or("resume_timestamp_us", 0).value_or(0), INT64_MAX));
  if (run.was_running && resume_us > 0) {
    if (auto stop = event_after(run.qmp, "STOP", run.stop_before, milliseconds(2000))) {
      rep.downtime_ms = (resume_us - stop->timestamp_us) / 1000;
    }
  }
  rep.source_state = query_runstate(run.qmp).value_or("unknown");
  if (run.options.after == SourceAfter::quit) {
    (void)run.qmp.execute("quit");
    rep.source_state = "quit";
  }
  return std::move(run.outcome);
}

// Phase 5. Reads the receiver's verdict on the delivered stream, runs the
// commit handshake when it reports "ready", and decides the source's fate by
// the rules of session.h: resumed only when the destination surely does not
// run, left paused (unknown) whenever that is not sure.
Outcome conclude(SendRun& run) {
  auto verdict = run.inbox.next(run.options.result_timeout);
  run.rep.bytes_on_wire = run.link.bytes_sent() + run.link.bytes_received();
  if (!verdict) {
    return verdict_lost(run, verdict.error());
  }
  UTSUSHI_LOG_DEBUG("the receiver's verdict arrived");
  bool went = verdict->header.type == FrameType::ready;  // "go" was sent
  if (went) {
    auto running = commit(run);
    if (!running) {
      return leave_paused(run, running.error());
    }
    verdict = std::move(*running);
  }
  std::string text = verdict->text();
  json res = json::parse(text, nullptr, false);
  // Fields of another type read as absent: a broken verdict is never an exception.
  const link::JsonMessage msg(res, "the receiver's verdict");
  run.rep.dest_stream_hash = msg.string_or("stream_hash", "").value_or("");
  std::string status = msg.string_or("status", "").value_or("");
  std::string why = verdict->header.type == FrameType::abort ? "abort: " + text
                    : !res.is_object()                      ? std::string("unreadable verdict")
                                                            : msg.string_or("error", "").value_or("");
  if (why.empty()) {
    why = "status " + status;
  }
  if (went) {
    // After "go" only an explicit "not started, discarded" gives the guest back to the source.
    bool not_started = msg.has("started") && msg.boolean("started").value_or(true) == false;
    if (verdict->header.type == FrameType::running && status == "discarded" && not_started) {
      return resume_source(run, Error(Errc::aborted, "the destination did not start after 'go' and was discarded (" +
                                                         why + "); the source was resumed"));
    }
    if (verdict->header.type != FrameType::running || status != "ok") {
      return leave_paused(run, "'go' was sent but the destination's state is unknown (" + why + ")");
    }
  } else if (status == "unknown") {
    return leave_paused(run, "the receiver could not make sure the destination is gone (" + why + ")");
  }
  bool good_type = verdict->header.type == FrameType::result || verdict->header.type == FrameType::running;
  if (!good_type || status != "ok") {
    return resume_source(run, Error(Errc::aborted, "destination did not start: " + why));
  }
  return succeed(run, msg);
}


// The phases in order: check_ends, copy_disks (--copy-storage),
// start_migration, supervise (with the pump running; the final disk pass in
// it), abandon on a failure before the stream was delivered, conclude.
Outcome run_phases(SendRun& run) {
  Monitor& qmp = run.qmp;
  if (auto failed = check_ends(run)) {
    return std::move(*failed);
  }
  if (!run.options.copy_storage.empty()) {
    if (auto failed = copy_disks(run)) {
      return std::move(*failed);
    }
  }
  if (auto failed = start_migration(run)) {
    return std::move(*failed);
  }
  // run.disks outlives the pump: the pump's thread is joined before run ends.
  std::function<void()> near_end;
  if (run.precopy) {
    near_end = [&run] { run.first_pass_hold.near_end(); };
  }
  PumpThread pump(run.sock->get(), run.link, run.inbox, run.options, run.send_lock,
                  run.disks ? &run.disks->sent_blocks() : nullptr, std::move(near_end));
  auto failure = supervise(run, pump);
  run.rep.bytes_from_qemu = pump.bytes_read();
  // A failure after the whole stream reached the link (e.g. QEMU's status
  // unreadable at the very end) does not stop it: the receiver decides.
  if (failure && !pump.delivered()) {
    return abandon(run, std::move(*failure), pump);
  }
  copy_pump_result(pump.join(), run.rep);
  if (auto st = query_migration(qmp); st) {
    run.rep.rounds = std::max(run.rep.rounds, st->dirty_sync_count);
    run.rep.qemu_downtime_ms = st->downtime_ms;
  }
  return conclude(run);
}

}  // namespace

Outcome run_sender(const SendOptions& options, Monitor& qmp, Link& link) {
  SendRun run(options, qmp, link);
  run.rep.source_qmp = qmp.path();
  Outcome out = run_phases(run);
  run.precopy.reset();  // it uses run.disks: stopped and joined first
  // On every path: QEMU's max-bandwidth back to what set_source_parameters
  // set, for whatever migrates this guest next.
  if (auto r = run.first_pass_hold.release(); !r) {
    UTSUSHI_LOG_WARN("{}", r.error().message());
  }
  if (run.disks) {
    // On every path: the source's exports, bitmaps and NBD server go (the
    // final pass removed them already on the way to success).
    if (auto r = run.disks->stop(); !r) {
      UTSUSHI_LOG_WARN("removing the source's disk exports: {}", r.error().message());
    }
    if (out.report.source_state != "quit") {
      json caps = json::array({{{"capability", "pause-before-switchover"}, {"state", false}}});
      (void)qmp.execute("migrate-set-capabilities", {{"capabilities", caps}});
    }
    out.report.disks = run.disks->reports();
    out.report.disk_phases = run.disks->phases();
    out.report.first_pass_held_ms = run.first_pass_hold.held_for().count();
  }
  return out;
}

}  // namespace utsushi::livemig
