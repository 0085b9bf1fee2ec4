#pragma once
// The two ends of a migration. Both take an authenticated Link (see
// handshake.h) and a connected Monitor (monitor.h), and always produce a Report, also
// on failure (then Outcome::error says why).
//
// Guarantees (the "nothing is lost" rule):
//   - Sender: until the whole stream has been handed to the link, any failure
//     (refused layout, link error, corrupted frame reported by the receiver,
//     time limit, SIGINT) cancels the migration and leaves the source guest
//     running. After that, the source is resumed if the receiver reports that
//     the destination did not start.
//   - Receiver: feeds the destination only bytes whose frames verified, holds
//     back the last batch until the sender's whole-stream hash matches, and on
//     any failure quits the destination QEMU (an incoming QEMU cannot retry).
//
// The switch-over. The receiver's first frame ("mode") says whether the
// destination is held: paused after loading (ReceiveOptions::hold: the
// receiver sends QMP `stop` while the destination is incoming, which in QEMU
// 7.2 clears its autostart exactly like -S). Then the commit handshake runs:
//     receiver "ready" (stream verified and loaded, guest paused)
//  -> sender "go" -> receiver `cont` -> receiver "running" -> sender quits the source.
//   - "ready" never arrives (link lost, receiver dead, timeout): the sender
//     resumes the source. Safe: the destination is paused and never told to
//     go; its receiver discards it when its wait for "go" ends (go_timeout or
//     the link drops).
//   - "go" sent but "running" never arrives: the only ambiguous case. The
//     destination runs if "go" reached it, and was discarded if not; the
//     sender leaves the source paused and reports status "unknown", naming
//     this case.
// Once "go" arrived (committed) the receiver never sends a plain "abort": its
// answer is a "running" frame whose JSON "status" is one of
//     "ok"         the destination runs (also when starting it reported an
//                  error but a runstate query then says "running");
//     "discarded"  (with "started": false) the destination did not start and
//                  is gone for sure: QEMU acknowledged `quit`, or its monitor
//                  is gone (QEMU exited), or ReceiveOptions::discard succeeded;
//     "unknown"    its state could not be read, or discarding it failed: it
//                  may run; "error" says why.
// The sender resumes the source after "go" ONLY on "discarded". Anything else
// that is not "ok" (an abort, an unreadable or unexpected frame, a lost link,
// "unknown") leaves the source paused with status "unknown" and an error
// naming what to check.
// Before "go" a receiver that fails discards the destination and reports
// source_state "discarded"; when it cannot make sure the destination is gone
// its report says status "unknown", and if the whole stream had reached the
// destination it tells the sender with a "result" frame of status "unknown"
// (instead of "abort"), which also leaves the source paused.
// A destination that is paused after loading without hold (QEMU -S that the
// receiver was not told about) also gets ready/go/running, but the sender did
// not know in advance, so a lost "ready" is reported "unknown" as below.
// Without hold QEMU starts the destination itself once loaded, and the
// receiver reports "result". If that verdict never arrives the destination may
// already run: the source is left paused (status "unknown"). That window
// (from the destination's autostart to the sender reading "result") is what
// hold closes.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/livemig/link.h"
#include "utsushi/livemig/monitor.h"
#include "utsushi/livemig/policy.h"
#include "utsushi/livemig/report.h"

namespace utsushi::livemig {

struct Outcome {
  Report report;
  std::optional<Error> error;
};

enum class SourceAfter { quit, keep };

struct SendOptions {
  PolicyConfig policy;
  // zstd level of link batches: 0 adapts between 1 and zstd_max_level to
  // the bottleneck (batch_compressor.h); 1..19 pins it.
  int zstd_level = 0;
  int zstd_max_level = 9;
  std::size_t batch_bytes = 1 << 20;
  SourceAfter after = SourceAfter::quit;
  std::chrono::milliseconds result_timeout{std::chrono::seconds(120)};
  // After "go": how long to wait for "running".
  std::chrono::milliseconds running_timeout{std::chrono::seconds(30)};
  // How long to wait for the receiver's "mode" frame before starting.
  std::chrono::milliseconds mode_timeout{std::chrono::seconds(30)};
  // --copy-storage: the disks to pre-copy (node names, device names or qdev
  // ids; {"all"}: every writable disk on a local image; disk_session.h).
  // Empty: memory only. The receiver must be started with copy_storage too.
  std::vector<std::string> copy_storage;
  // Dirty disk passes before the memory migration starts: at most this many,
  // fewer once a pass sends at most disk_pass_bytes.
  unsigned max_disk_passes = 8;
  std::uint64_t disk_pass_bytes = 4u << 20;
};

// Checks a source QEMU before anything is changed: version 7.2, a guest that
// is running or paused, and no migration in progress. Returns the version.
[[nodiscard]] Result<std::string> preflight_source(Monitor& qmp);
// Checks a destination QEMU: version 7.2, runstate "inmigrate" (started with
// -incoming defer), then forces capabilities off.
[[nodiscard]] Result<std::string> prepare_destination(Monitor& qmp);

Outcome run_sender(const SendOptions& options, Monitor& qmp, Link& link);

struct ReceiveOptions {
  std::chrono::milliseconds resume_timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(120)};
  // Keep the destination paused after loading and start it only on "go".
  bool hold = false;
  // With a paused destination: how long to wait for "go" before discarding it.
  std::chrono::milliseconds go_timeout{std::chrono::seconds(30)};
  // How to start a paused destination on "go" (a libvirt domain: through
  // libvirt, so that its state stays right); without it, QMP `cont`.
  std::function<Result<void>()> resume;
  // How to discard the destination after a failure and make sure it is gone
  // (a libvirt domain: destroy it through libvirt); without it, QMP `quit`,
  // confirmed by QEMU's answer or by its monitor going away.
  std::function<Result<void>()> discard;
  // Take the sender's disks (disk_session.h) into the destination's disks of
  // the same devices through a writable NBD export. Implies hold: the
  // destination starts only after the disks' hashes matched and "go" came.
  bool copy_storage = false;
};

Outcome run_receiver(const ReceiveOptions& options, Monitor& qmp, Link& link);

}  // namespace utsushi::livemig
