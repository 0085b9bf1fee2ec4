#include "utsushi/livemig/policy.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace utsushi::livemig {

namespace {

constexpr double k_page_bytes = 4096.0;  // what QEMU's `remaining` counts per dirty page
// Not 0: under a limit of 0 QEMU 7.2 stops syncing its dirty bitmap and
// completes once the current pass is sent, whatever was written meanwhile.
constexpr std::uint32_t k_hold_limit_ms = 1;

// Keeps the samples that span the rate window: every one inside it, and the
// newest one older than it.
void add_sample(const PolicyConfig& config, PolicyState& state, PageSample sample) {
  state.samples.push_back(sample);
  while (state.samples.size() > 2 && sample.at - state.samples[1].at >= config.rate_window) {
    state.samples.pop_front();
  }
}

// Every `rounds_per_step` dirty syncs without completing, while QEMU expects
// more than its limit: the target goes up by `step`, within its bound.
std::optional<std::string> maybe_raise(const PolicyConfig& config, PolicyState& state, const MigrationStatus& status) {
  if (state.target_ms >= config.max_downtime_ms ||
      status.dirty_sync_count < state.last_step_sync + config.rounds_per_step) {
    return std::nullopt;
  }
  state.last_step_sync = status.dirty_sync_count;
  std::uint32_t current = qemu_downtime_limit(config, state.target_ms);
  if (status.expected_downtime_ms >= 0 && status.expected_downtime_ms <= current) {
    return std::nullopt;
  }
  auto next = static_cast<std::uint32_t>(std::ceil(state.target_ms * config.step));
  state.target_ms = std::min(next, config.max_downtime_ms);
  ++state.steps;
  return fmt::format("not converging after {} dirty syncs (QEMU expects {} ms): downtime target raised to {} ms",
                     status.dirty_sync_count, status.expected_downtime_ms, state.target_ms);
}

// Page bytes per ms the pump kept over the rate window; nullopt while the
// samples span less than a third of it or show no pages.
std::optional<double> page_rate_bytes_per_ms(const PolicyConfig& config, const PolicyState& state) {
  if (state.samples.size() < 2) {
    return std::nullopt;
  }
  const PageSample& first = state.samples.front();
  const PageSample& last = state.samples.back();
  const auto span = last.at - first.at;
  if (span * 3 < config.rate_window || last.pages <= first.pages) {
    return std::nullopt;
  }
  return static_cast<double>(last.pages - first.pages) * k_page_bytes / static_cast<double>(span.count());
}

// The stopped phase's length for `remaining` bytes at `rate` (bytes per ms).
double stop_ms(const PolicyConfig& config, double rate, std::uint64_t remaining) {
  return static_cast<double>(remaining) / rate + config.cutover_ms;
}

// The downtime-limit QEMU should have now (policy.h: hold, scaled, or the
// target's).
std::uint32_t qemu_limit_for(const PolicyConfig& config, const PolicyState& state, const MigrationStatus& status,
                             bool disks_pending) {
  const std::uint32_t limit = qemu_downtime_limit(config, state.target_ms);
  if (!config.pace_switchover) {
    return limit;
  }
  if (disks_pending) {
    return k_hold_limit_ms;
  }
  auto rate = page_rate_bytes_per_ms(config, state);
  if (status.dirty_sync_count < 2 || !rate ||
      stop_ms(config, *rate, status.remaining) > config.hold_factor * state.target_ms) {
    return k_hold_limit_ms;
  }
  const double qemu_bytes_per_ms = status.mbps * 1e6 / 8 / 1000;
  if (qemu_bytes_per_ms <= *rate) {
    return limit;
  }
  const double scaled = limit * *rate / qemu_bytes_per_ms;
  return std::max<std::uint32_t>(k_hold_limit_ms, static_cast<std::uint32_t>(scaled));
}

}  // namespace

std::uint32_t qemu_downtime_limit(const PolicyConfig& config, std::uint32_t target_ms) noexcept {
  std::uint32_t limit = target_ms > config.cutover_ms ? target_ms - config.cutover_ms : 0;
  return std::max(limit, std::max<std::uint32_t>(target_ms / 2, 1));
}

std::optional<std::uint32_t> estimate_stop_ms(const PolicyConfig& config, const PolicyState& state,
                                              std::uint64_t remaining) {
  auto rate = page_rate_bytes_per_ms(config, state);
  if (!rate) {
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(std::min(stop_ms(config, *rate, remaining), 1e9));
}

PolicyDecision decide(const PolicyConfig& config, PolicyState& state, const MigrationStatus& status,
                      PageSample pump) {
  if (state.target_ms == 0) {
    state.target_ms = config.downtime_ms;
  }
  if (pump.at >= config.time_limit) {
    return {PolicyAction::cancel, 0,
            fmt::format("time limit of {} s reached without converging (dirty syncs: {})",
                        config.time_limit.count() / 1000, status.dirty_sync_count)};
  }
  if (status.status != "active") {
    return {};
  }
  if (config.pace_switchover && !state.first_pass_dropped && status.dirty_sync_count >= 2) {
    // QEMU's first pass (all of memory: zeros, references) tells nothing of
    // what the dirty pages of the next ones cost.
    state.samples.clear();
    state.first_pass_dropped = true;
  }
  add_sample(config, state, pump);
  const bool disks_pending = config.pace_switchover && pump.disks_pending;
  if (disks_pending) {
    state.last_step_sync = status.dirty_sync_count;  // counts from the disks' end
  }
  auto raised = disks_pending ? std::nullopt : maybe_raise(config, state, status);
  const std::uint32_t want = qemu_limit_for(config, state, status, disks_pending);
  if (raised) {
    state.qemu_limit_ms = want;
    return {PolicyAction::raise_downtime, want, *raised};
  }
  // Small moves are not worth a monitor command; a hold or release always is.
  const std::uint32_t had = state.qemu_limit_ms;
  if (want == had || (want > k_hold_limit_ms && had > k_hold_limit_ms && want * 10 > had * 9 && want * 9 < had * 10)) {
    return {};
  }
  state.qemu_limit_ms = want;
  return {PolicyAction::set_limit, want,
          fmt::format("downtime-limit {} ms: {} bytes remain, about {} ms at the recent page rate; QEMU's "
                      "bandwidth {:.0f} Mbit/s",
                      want, status.remaining, estimate_stop_ms(config, state, status.remaining).value_or(0),
                      status.mbps)};
}

}  // namespace utsushi::livemig
