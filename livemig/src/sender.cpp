// Source side: drives QEMU's migration (the pump, pump.h, carries its
// stream), applies the policy and restores the source on failure.
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/core.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "utsushi/common/cancel.h"
#include "utsushi/common/handles.h"
#include "utsushi/common/log.h"
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

Outcome run_sender(const SendOptions& options, Monitor& qmp, Link& link) {
  Outcome o;
  Report& rep = o.report;
  rep.source_qmp = qmp.path();
  auto start = steady_clock::now();
  auto failed = [&](Error e, const char* status) -> Outcome {
    rep.status = status;
    rep.error = e.message();
    o.error = std::move(e);
    rep.bytes_on_wire = link.bytes_sent() + link.bytes_received();
    rep.frames = link.frames_sent();
    rep.frames_received = link.frames_received();
    if (rep.total_ms < 0) {
      rep.total_ms = ms_since(start);
    }
    return std::move(o);
  };

  auto version = preflight_source(qmp);
  if (!version) {
    link.send_abort(version.error().message());
    return failed(version.error(), version.error().code() == Errc::not_supported ? "refused" : "failed");
  }
  rep.qemu_version = *version;
  // The receiver's first frame: is the destination held paused after loading?
  bool hold = false;
  if (auto mode = link.recv(options.mode_timeout); !mode) {
    return failed(mode.error(), "failed");
  } else if (mode->header.type == FrameType::abort) {
    return failed(Error(Errc::aborted, "the receiver refused: " + mode->text()), "failed");
  } else if (mode->header.type != FrameType::mode) {
    link.send_abort("expected the receiver's mode");
    return failed(Error(Errc::corruption, "the receiver did not announce its mode"), "failed");
  } else {
    hold = json::parse(mode->text(), nullptr, false).value("hold", false);
  }
  bool was_running = query_runstate(qmp).value_or("running") == "running";
  const PolicyConfig& pol = options.policy;
  PolicyState pstate;
  pstate.target_ms = pol.downtime_ms;
  rep.downtime_limit_ms = qemu_downtime_limit(pol, pol.downtime_ms);
  if (auto r = force_capabilities(qmp, pol.auto_converge); !r) {
    link.send_abort(r.error().message());
    return failed(r.error(), "failed");
  }
  if (auto r = set_source_parameters(qmp, {rep.downtime_limit_ms, pol.max_cpu_throttle}); !r) {
    link.send_abort(r.error().message());
    return failed(r.error(), "failed");
  }
  std::string fdname = fmt::format("livemig-out-{}", ::getpid());
  auto sock = hand_socket_to_qemu(qmp, fdname);
  if (!sock) {
    link.send_abort(sock.error().message());
    return failed(sock.error(), "failed");
  }
  (void)qmp.poll_events();
  // The downtime is measured from the STOP this migration causes, not from an
  // earlier one (a guest paused before): remember the latest STOP so far.
  std::optional<QmpEvent> stop_before = qmp.last_event("STOP");
  start = steady_clock::now();
  if (auto r = qmp.execute("migrate", {{"uri", "fd:" + fdname}}); !r) {
    (void)qmp.execute("closefd", {{"fdname", fdname}});
    link.send_abort(r.error().message());
    return failed(r.error(), "failed");
  }
  UTSUSHI_LOG_INFO("migration started from {} (QEMU {})", qmp.path(), rep.qemu_version);

  std::atomic<bool> stop{false};
  std::atomic<bool> pump_done{false};
  std::atomic<std::uint64_t> bytes_read{0};
  PumpResult pr;
  std::thread pump_thread([&] {
    pump(sock->get(), link, options, stop, pr, bytes_read);
    pump_done = true;
  });

  std::optional<Error> error;
  const char* fail_status = "failed";
  MigrationStatus last;
  bool qemu_completed = false;
  for (;;) {
    if (pump_done.load()) {
      if (pr.error) {
        error = pr.error;
        if (pr.error->code() == Errc::not_supported) {
          fail_status = "refused";
        }
        break;
      }
    }
    auto st = query_migration(qmp);
    if (!st) {
      error = st.error();
      break;
    }
    last = *st;
    rep.rounds = std::max(rep.rounds, last.dirty_sync_count);
    if (last.status == "completed") {
      qemu_completed = true;
      if (pump_done.load()) {
        break;
      }
    } else if (last.status == "failed" || last.status == "cancelled") {
      // Let the pump report its own (usually more precise) error first.
      std::this_thread::sleep_for(milliseconds(200));
      if (pump_done.load() && pr.error) {
        continue;
      }
      error = Error(Errc::aborted, fmt::format("QEMU migration {}: {}", last.status, last.error));
      break;
    }
    if (cancel_requested()) {
      error = Error(Errc::cancelled, "cancelled by signal");
      fail_status = "cancelled";
      break;
    }
    if (!qemu_completed) {
      auto d = decide(pol, pstate, last, duration_cast<milliseconds>(steady_clock::now() - start));
      if (d.action == PolicyAction::cancel) {
        error = Error(Errc::aborted, d.reason);
        fail_status = "timeout";
        break;
      }
      if (d.action == PolicyAction::raise_downtime) {
        UTSUSHI_LOG_WARN("{}", d.reason);
        if (qmp.execute("migrate-set-parameters", {{"downtime-limit", d.qemu_limit_ms}})) {
          rep.downtime_limit_ms = d.qemu_limit_ms;
          rep.policy_steps = pstate.steps;
        }
      }
    }
    std::this_thread::sleep_for(milliseconds(qemu_completed ? 10 : 100));
  }
  rep.bytes_from_qemu = bytes_read.load();

  if (error) {
    // Stop everything that might block, then give the source back its guest.
    if (!pump_done.load() || !pr.stream_complete) {
      if (error->code() == Errc::unavailable || error->code() == Errc::aborted) {
        // The receiver usually says why it stopped: prefer its reason.
        if (auto peer = link.recv(milliseconds(300)); peer && peer->header.type == FrameType::abort) {
          error = Error(Errc::aborted,
                        "the receiver stopped the migration: " + std::string(peer->payload.begin(), peer->payload.end()));
        }
      }
      // Link::send has one caller at a time: stop the pump (and so its
      // shipper thread) before the abort goes out on this thread. A shipper
      // stuck in send (the peer stopped reading) does not end by itself:
      // then the link is shut down without an abort (the peer sees it drop).
      stop = true;
      for (auto until = steady_clock::now() + seconds(2); !pump_done.load() && steady_clock::now() < until;) {
        std::this_thread::sleep_for(milliseconds(10));
      }
      if (pump_done.load()) {
        link.send_abort(error->message());
      }
      link.shutdown();
      // Close our end of QEMU's stream socket so QEMU's writer (and a
      // return-path reader, if one was opened) fail at once.
      ::shutdown(sock->get(), SHUT_RDWR);
      auto restored = was_running ? restore_source(qmp, seconds(30)) : query_runstate(qmp);
      pump_thread.join();
      rep.source_state = restored.value_or("unknown");
      copy_pump_result(pr, rep);
      if (!restored) {
        UTSUSHI_LOG_ERROR("could not restore the source guest: {}", restored.error().message());
      }
      return failed(*error, fail_status);
    }
  }
  pump_thread.join();
  copy_pump_result(pr, rep);
  if (auto st = query_migration(qmp); st) {
    rep.rounds = std::max(rep.rounds, st->dirty_sync_count);
    rep.qemu_downtime_ms = st->downtime_ms;
  }
  // The stream is with the receiver; wait for its verdict.
  auto resume_source = [&](Error e) -> Outcome {
    auto restored = was_running ? restore_source(qmp, seconds(30)) : query_runstate(qmp);
    rep.source_state = restored.value_or("unknown");
    return failed(std::move(e), "failed");
  };
  auto verdict = link.recv(options.result_timeout);
  rep.bytes_on_wire = link.bytes_sent() + link.bytes_received();
  if (!verdict) {
    if (hold) {
      // The destination is paused and will never get "go": the guest stays here.
      return resume_source(Error(Errc::unavailable, "the receiver never reported the stream loaded (" +
                                                        verdict.error().message() +
                                                        "); the held destination is discarded by its receiver and "
                                                        "the source was resumed"));
    }
    rep.source_state = query_runstate(qmp).value_or("unknown");
    return failed(Error(Errc::unavailable, "the stream was delivered but the receiver's verdict never arrived (" +
                                               verdict.error().message() +
                                               "); the destination may have started on its own (no --hold): the "
                                               "source is left paused: check the destination"),
                  "unknown");
  }
  // The destination's state is not known: the source stays paused.
  auto unknown = [&](const std::string& what) -> Outcome {
    rep.source_state = query_runstate(qmp).value_or("unknown");
    return failed(Error(Errc::unavailable,
                        what + ". The source is left paused: check the destination (QMP query-status, or virsh "
                               "domstate for a libvirt domain); if it runs, quit the source; if it is gone or "
                               "paused, discard it and resume the source (cont)"),
                  "unknown");
  };
  bool went = false;  // "go" was sent
  if (verdict->header.type == FrameType::ready) {
    rep.held = true;
    // Commit: from here on the destination may run, so nothing resumes the source
    // unless the receiver says the destination did not start and is gone.
    bool go_sent = static_cast<bool>(link.send_text(FrameType::go, json{{"start", was_running}}.dump()));
    went = true;
    if (go_sent) {
      verdict = link.recv(options.running_timeout);
    }
    rep.bytes_on_wire = link.bytes_sent() + link.bytes_received();
    if (!go_sent || !verdict) {
      return unknown(std::string(go_sent ? "'go' was sent" : "sending 'go' failed") +
                     " but the destination's 'running' never arrived (" +
                     (go_sent ? verdict.error().message() : std::string("link lost")) +
                     "): the destination runs if 'go' reached it and was discarded if not");
    }
  }
  std::string text = verdict->text();
  json res = json::parse(text, nullptr, false);
  if (res.is_object()) {
    rep.dest_stream_hash = res.value("stream_hash", std::string());
  }
  std::string status = res.is_object() ? res.value("status", std::string()) : std::string();
  std::string why = verdict->header.type == FrameType::abort ? "abort: " + text
                    : !res.is_object()                      ? std::string("unreadable verdict")
                                                            : res.value("error", std::string("status " + status));
  if (went) {
    // After "go" only an explicit "not started, discarded" gives the guest back to the source.
    bool not_started = res.is_object() && res.value("started", json(true)) == json(false);
    if (verdict->header.type == FrameType::running && status == "discarded" && not_started) {
      return resume_source(Error(Errc::aborted, "the destination did not start after 'go' and was discarded (" +
                                                    why + "); the source was resumed"));
    }
    if (verdict->header.type != FrameType::running || status != "ok") {
      return unknown("'go' was sent but the destination's state is unknown (" + why + ")");
    }
  } else if (status == "unknown") {
    return unknown("the receiver could not make sure the destination is gone (" + why + ")");
  }
  bool good_type = verdict->header.type == FrameType::result || verdict->header.type == FrameType::running;
  if (!good_type || status != "ok") {
    return resume_source(Error(Errc::aborted, "destination did not start: " + why));
  }
  rep.status = "ok";
  rep.converged = true;
  rep.frames = link.frames_sent();
  rep.frames_received = link.frames_received();
  rep.bytes_to_qemu = res.value("bytes_to_qemu", std::uint64_t{0});
  rep.total_ms = ms_since(start);
  std::int64_t resume_us = res.value("resume_timestamp_us", std::int64_t{0});
  if (was_running && resume_us > 0) {
    // The STOP this migration caused: newer than the latest one before it.
    std::optional<QmpEvent> stop_ev;
    for (auto until = steady_clock::now() + milliseconds(2000);;) {
      (void)qmp.poll_events();
      stop_ev = qmp.last_event("STOP");
      if (stop_ev && (!stop_before || stop_ev->timestamp_us > stop_before->timestamp_us)) {
        break;
      }
      stop_ev.reset();
      if (steady_clock::now() >= until) {
        break;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (stop_ev) {
      rep.downtime_ms = (resume_us - stop_ev->timestamp_us) / 1000;
    }
  }
  rep.source_state = query_runstate(qmp).value_or("unknown");
  if (options.after == SourceAfter::quit) {
    (void)qmp.execute("quit");
    rep.source_state = "quit";
  }
  return o;
}

}  // namespace utsushi::livemig
