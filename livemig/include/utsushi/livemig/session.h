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
//     the destination did not start; if the receiver's verdict never arrives,
//     the source is left paused (status "unknown") since the destination may
//     already run.
//   - Receiver: feeds the destination only bytes whose frames verified, holds
//     back the last batch until the sender's whole-stream hash matches, and on
//     any failure quits the destination QEMU (an incoming QEMU cannot retry).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

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
enum class Capabilities { force, trust };

struct SendOptions {
  PolicyConfig policy;
  int zstd_level = 1;
  std::size_t batch_bytes = 1 << 20;
  SourceAfter after = SourceAfter::quit;
  // trust: do not force capabilities off; the parser still refuses what it
  // does not know (used to test refusal of foreign layouts).
  Capabilities capabilities = Capabilities::force;
  std::chrono::milliseconds result_timeout{std::chrono::seconds(120)};
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
  // Called when the destination has loaded the whole stream but is paused
  // (a libvirt domain started paused): must make it run, before the verdict
  // goes to the sender. Without it such a destination stays paused.
  std::function<Result<void>()> resume;
};

Outcome run_receiver(const ReceiveOptions& options, Monitor& qmp, Link& link);

}  // namespace utsushi::livemig
