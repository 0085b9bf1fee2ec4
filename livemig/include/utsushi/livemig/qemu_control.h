#pragma once
// The QMP steps livemig takes on a source or destination QEMU (reference
// section 7, "Settings livemig should force"): version gate, capabilities,
// parameters, handing QEMU one end of a socketpair, and putting the source
// back into a running state after a failure.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "utsushi/common/fd.h"
#include "utsushi/livemig/monitor.h"

namespace utsushi::livemig {

// Refuses (Errc::not_supported) any QEMU other than 7.2.x, whose stream
// layout the parser knows. Returns "7.2.N".
[[nodiscard]] Result<std::string> check_qemu_version(Monitor& qmp);

// Turns off every capability that changes the stream layout or opens extra
// channels (xbzrle, compress, multifd, postcopy-ram, postcopy-preempt,
// return-path, x-ignore-shared, validate-uuid, block, dirty-bitmaps, x-colo,
// background-snapshot, zero-copy-send, release-ram, rdma-pin-all,
// pause-before-switchover) and sets auto-converge as asked.
[[nodiscard]] Result<void> force_capabilities(Monitor& qmp, bool auto_converge);

struct SourceParameters {
  std::uint32_t downtime_limit_ms = 300;
  std::uint32_t max_cpu_throttle = 99;
};
// Sets downtime-limit, max-bandwidth (k_open_bandwidth: livemig's
// back-pressure governs), empty tls-creds, and the throttle bound.
[[nodiscard]] Result<void> set_source_parameters(Monitor& qmp, const SourceParameters& p);

// QEMU's max-bandwidth (bytes/s) for a migration that livemig paces itself.
inline constexpr std::uint64_t k_open_bandwidth = std::uint64_t{1} << 40;
// A max-bandwidth that holds QEMU 7.2's pre-copy where it is. QEMU lets its
// stream carry max-bandwidth / 10 bytes per 100 ms window and, once a
// window's budget is spent, sends nothing until the next one: at 10 bytes/s
// the budget is 1 byte, so no page record fits and each window carries only
// the RAM section's end-of-section word (8 bytes). Pages that are not sent
// stay pending, so QEMU cannot find what remains small enough to switch over.
// (Measured on QEMU 7.2: `remaining` does not move while it is set; restoring
// k_open_bandwidth resumes the pass at once. A value under 10 rounds the
// budget to 0, which QEMU reads as no limit.)
inline constexpr std::uint64_t k_hold_bandwidth = 10;
// Sets QEMU's max-bandwidth during a migration (takes effect at once).
[[nodiscard]] Result<void> set_max_bandwidth(Monitor& qmp, std::uint64_t bytes_per_s);

// Creates a socketpair, passes one end to QEMU as fd `name` (getfd) and
// returns the other end. Both ends get small buffers so QEMU feels
// back-pressure quickly.
[[nodiscard]] Result<Fd> hand_socket_to_qemu(Monitor& qmp, const std::string& name);

struct MigrationStatus {
  std::string status;  // none, setup, active, completed, failed, cancelling, cancelled, ...
  std::uint64_t dirty_sync_count = 0;
  std::uint64_t remaining = 0;
  std::uint64_t transferred = 0;
  std::uint64_t dirty_pages_rate = 0;
  double mbps = -1;  // QEMU's stream bandwidth over its last 100 ms (Mbit/s); -1: not reported
  std::int64_t expected_downtime_ms = -1;
  std::int64_t downtime_ms = -1;  // QEMU's own (source-side) figure
  std::string error;
};
[[nodiscard]] Result<MigrationStatus> query_migration(Monitor& qmp);

// The guest's RAM in bytes (query-memory-size-summary: base and plugged).
[[nodiscard]] Result<std::uint64_t> guest_memory_bytes(Monitor& qmp);

// "running", "paused", "inmigrate", "postmigrate", "finish-migrate", ...
[[nodiscard]] Result<std::string> query_runstate(Monitor& qmp);

// After a failed migration: cancels it if it is still going, waits for QEMU
// to leave the active states, and resumes the guest if it is not running.
// Returns the final runstate.
[[nodiscard]] Result<std::string> restore_source(Monitor& qmp, std::chrono::milliseconds timeout);

// Destination, after the whole stream was fed: polls the runstate (every
// 10 ms) until QEMU has loaded it and returns "running" or "paused" (held, or
// started with -S). Fails Errc::aborted when QEMU leaves the loading states
// (inmigrate, restore-vm, prelaunch) for any other, Errc::unavailable when
// `timeout` passes first, and with the monitor's error when a query fails.
[[nodiscard]] Result<std::string> wait_destination_loaded(Monitor& qmp, std::chrono::milliseconds timeout);

// The first event named `name` newer than `before` (by QEMU's timestamp; any
// one when `before` is empty), polling events every 10 ms for up to
// `timeout`; nullopt if none came. The sender uses it to find the STOP its own
// migration caused rather than an earlier pause.
std::optional<QmpEvent> event_after(Monitor& qmp, const std::string& name, const std::optional<QmpEvent>& before,
                                    std::chrono::milliseconds timeout);

}  // namespace utsushi::livemig
