#pragma once
// Convergence policy: a pure function from what QEMU reports to what livemig
// should do next. The sender calls decide() about every 100 ms.
//
//   - elapsed >= time_limit                          -> cancel (source keeps running)
//   - every `rounds_per_step` dirty syncs without completing, while QEMU
//     expects more downtime than the current limit   -> raise the limit by
//     `step` (x1.5), never above max_downtime_ms
//   - with pace_switchover, while the disks' pre-copy (disk_precopy.h) runs
//     (QEMU's migration starts before it ends, sender.cpp's copy_disks)
//                                                     -> hold QEMU's limit at 1 ms,
//     and no raise either (the guest is not failing to converge); the
//     limit alone does not keep QEMU from switching over when nothing is
//     dirty: the first-pass hold (first_pass_hold.h) does
//   - with pace_switchover, during QEMU's first pass, and then while livemig's
//     own estimate of the stopped phase is over `hold_factor` x the target or
//     there is none yet                               -> hold QEMU's limit at
//     1 ms, so that it switches over only when the dirty pages fit one
//     millisecond of its bandwidth (a limit of 0 would make QEMU 7.2 stop
//     syncing and complete after the current pass)
//   - otherwise                                       -> the target's limit,
//     scaled down by (livemig's page rate / QEMU's bandwidth) when QEMU's
//     bandwidth is the higher
//
// Why: QEMU switches over once what remains (after a last dirty sync) fits
// its downtime-limit at the bandwidth of its last 100 ms, counted in stream
// bytes. Pages that cost the link almost nothing (same, dup, disk
// references) make such a window look many times faster than the pipeline
// carries pages (link, and the receiver reading referenced blocks), and QEMU
// then stops the guest with far too much left. livemig's rate is the page
// rate the pump kept over the last `rate_window` (page records read from
// QEMU, at 4 KiB each, as QEMU counts what remains), from QEMU's second pass
// on (its first carries all of memory, mostly zeros and references, and says
// nothing of what the dirty pages left cost); the scaled limit makes QEMU's
// threshold that rate times the limit. The first pass is held whatever its
// rate: its cheap pages are cheap on the link but not for the receiver, which
// reads every referenced block, so the receiver is behind when it ends (by
// 2.1-2.4 s in the storage bench when QEMU switched over right then), and the
// next passes, link-bound, let it catch up.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "utsushi/livemig/qemu_control.h"

namespace utsushi::livemig {

struct PolicyConfig {
  std::uint32_t downtime_ms = 300;       // target real downtime
  std::uint32_t max_downtime_ms = 300;   // the limit may be raised up to this
  double step = 1.5;
  std::uint32_t rounds_per_step = 4;
  std::chrono::milliseconds time_limit{std::chrono::minutes(10)};
  bool auto_converge = false;
  std::uint32_t max_cpu_throttle = 99;
  // Part of the downtime QEMU does not see: pipeline flush, link latency,
  // destination load. Subtracted from the target to get QEMU's limit.
  std::uint32_t cutover_ms = 60;
  // The hold and the scaled limit below apply only when set: the sender sets
  // it for sessions that copy disks, whose `disk` references make QEMU's
  // windows the most misleading; memory-only loads meet their targets with
  // QEMU's own decision (docs/BENCHMARKS.md).
  bool pace_switchover = false;
  double hold_factor = 2.0;
  std::chrono::milliseconds rate_window{1000};
};

// QEMU's downtime-limit for a real-downtime target (never below target/2).
std::uint32_t qemu_downtime_limit(const PolicyConfig& config, std::uint32_t target_ms) noexcept;

// One poll's reading of the pump: page records read from QEMU by `at`
// (time since the migration's start); and whether the disks' pre-copy is
// still being sent.
struct PageSample {
  std::chrono::milliseconds at{0};
  std::uint64_t pages = 0;
  bool disks_pending = false;
};

struct PolicyState {
  std::uint32_t target_ms = 0;        // current real-downtime target
  std::uint64_t last_step_sync = 0;   // dirty-sync-count at the last step
  std::uint32_t steps = 0;
  std::uint32_t qemu_limit_ms = 0;    // the downtime-limit QEMU has (the sender sets it first)
  std::deque<PageSample> samples;     // the pump's readings over the rate window
  bool first_pass_dropped = false;    // pace_switchover: the samples start after QEMU's first pass
};

enum class PolicyAction { none, set_limit, raise_downtime, cancel };

struct PolicyDecision {
  PolicyAction action = PolicyAction::none;
  std::uint32_t qemu_limit_ms = 0;  // set_limit, raise_downtime: the new downtime-limit
  std::string reason;
};

// livemig's estimate of the stopped phase (ms, cutover included) for QEMU's
// `remaining` bytes, from the page rate over `state.samples`; nullopt while
// the samples span less than a third of the rate window or show no pages.
[[nodiscard]] std::optional<std::uint32_t> estimate_stop_ms(const PolicyConfig& config, const PolicyState& state,
                                                            std::uint64_t remaining);

// `pump` is the pump's reading at this poll.
PolicyDecision decide(const PolicyConfig& config, PolicyState& state, const MigrationStatus& status,
                      PageSample pump);

}  // namespace utsushi::livemig
