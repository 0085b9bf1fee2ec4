#include "utsushi/livemig/policy.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace utsushi::livemig {

std::uint32_t qemu_downtime_limit(const PolicyConfig& config, std::uint32_t target_ms) noexcept {
  std::uint32_t limit = target_ms > config.cutover_ms ? target_ms - config.cutover_ms : 0;
  return std::max(limit, std::max<std::uint32_t>(target_ms / 2, 1));
}

PolicyDecision decide(const PolicyConfig& config, PolicyState& state, const MigrationStatus& status,
                      std::chrono::milliseconds elapsed) {
  if (state.target_ms == 0) {
    state.target_ms = config.downtime_ms;
  }
  if (elapsed >= config.time_limit) {
    return {PolicyAction::cancel, 0,
            fmt::format("time limit of {} s reached without converging (dirty syncs: {})",
                        config.time_limit.count() / 1000, status.dirty_sync_count)};
  }
  if (status.status != "active" || state.target_ms >= config.max_downtime_ms) {
    return {};
  }
  if (status.dirty_sync_count < state.last_step_sync + config.rounds_per_step) {
    return {};
  }
  state.last_step_sync = status.dirty_sync_count;
  std::uint32_t current = qemu_downtime_limit(config, state.target_ms);
  if (status.expected_downtime_ms >= 0 && status.expected_downtime_ms <= current) {
    return {};
  }
  auto next = static_cast<std::uint32_t>(std::ceil(state.target_ms * config.step));
  state.target_ms = std::min(next, config.max_downtime_ms);
  ++state.steps;
  return {PolicyAction::raise_downtime, qemu_downtime_limit(config, state.target_ms),
          fmt::format("not converging after {} dirty syncs (QEMU expects {} ms): downtime target raised to {} ms",
                      status.dirty_sync_count, status.expected_downtime_ms, state.target_ms)};
}

}  // namespace utsushi::livemig
