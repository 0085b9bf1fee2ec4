#pragma once
// Convergence policy: a pure function from what QEMU reports to what livemig
// should do next. The sender calls decide() about every 100 ms.
//
//   - elapsed >= time_limit                          -> cancel (source keeps running)
//   - every `rounds_per_step` dirty syncs without completing, while QEMU
//     expects more downtime than the current limit   -> raise the limit by
//     `step` (x1.5), never above max_downtime_ms
// Auto-converge (vCPU throttling) is a capability that must be chosen before
// the migration starts; its bound is max_cpu_throttle (see qemu_control.h).

#include <chrono>
#include <cstdint>
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
};

// QEMU's downtime-limit for a real-downtime target (never below target/2).
std::uint32_t qemu_downtime_limit(const PolicyConfig& config, std::uint32_t target_ms) noexcept;

struct PolicyState {
  std::uint32_t target_ms = 0;        // current real-downtime target
  std::uint64_t last_step_sync = 0;   // dirty-sync-count at the last step
  std::uint32_t steps = 0;
};

enum class PolicyAction { none, raise_downtime, cancel };

struct PolicyDecision {
  PolicyAction action = PolicyAction::none;
  std::uint32_t qemu_limit_ms = 0;  // for raise_downtime: the new downtime-limit
  std::string reason;
};

PolicyDecision decide(const PolicyConfig& config, PolicyState& state, const MigrationStatus& status,
                      std::chrono::milliseconds elapsed);

}  // namespace utsushi::livemig
