#include "utsushi/livemig/evacuate.h"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "utsushi/common/log.h"
#include "utsushi/livemig/qemu_control.h"

namespace utsushi::livemig {

using namespace std::chrono;
using nlohmann::json;

Result<EvacuatePair> parse_evacuate_pair(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    return fail(Errc::invalid_argument, fmt::format("'{}' is not SOURCE.sock=DESTINATION", text));
  }
  return EvacuatePair{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

namespace {

bool is_remote(const std::string& dest) { return dest.find('/') == std::string::npos && dest.find(':') != std::string::npos; }

Result<GuestPlan> measure(const EvacuatePair& pair, bool dirty_rate) {
  GuestPlan g{pair};
  auto qmp = UTSUSHI_TRY(QmpClient::connect(pair.source_qmp, milliseconds(15000)));
  UTSUSHI_TRY(preflight_source(qmp));
  auto mem = UTSUSHI_TRY(qmp.execute("query-memory-size-summary"));
  g.memory_bytes = mem.value("base-memory", std::uint64_t{0}) + mem.value("plugged-memory", std::uint64_t{0});
  if (dirty_rate) {
    if (qmp.execute("calc-dirty-rate", {{"calc-time", 1}})) {
      for (int i = 0; i < 40; ++i) {
        std::this_thread::sleep_for(milliseconds(100));
        auto q = qmp.execute("query-dirty-rate");
        if (q && q->value("status", "") == "measured") {
          g.dirty_bytes_per_sec = q->value("dirty-rate", std::uint64_t{0}) << 20;  // MB/s
          break;
        }
      }
    }
  }
  g.cost = g.memory_bytes + 10 * g.dirty_bytes_per_sec;
  return g;
}

}  // namespace

Result<std::vector<GuestPlan>> plan_evacuation(const EvacuateOptions& options) {
  std::vector<GuestPlan> plan;
  for (const auto& pair : options.guests) {
    plan.push_back(UTSUSHI_TRY_CTX(measure(pair, options.measure_dirty_rate), pair.source_qmp));
  }
  std::stable_sort(plan.begin(), plan.end(), [](const GuestPlan& a, const GuestPlan& b) { return a.cost < b.cost; });
  return plan;
}

std::vector<GuestOutcome> evacuate(const EvacuateOptions& options, const std::vector<GuestPlan>& plan) {
  std::vector<GuestOutcome> results(plan.size());
  std::atomic<std::size_t> next{0};
  unsigned workers = std::max(1u, std::min<unsigned>(options.parallel, static_cast<unsigned>(plan.size())));
  std::uint64_t share = options.bandwidth / std::max(1u, workers);
  auto work = [&] {
    for (std::size_t i = next++; i < plan.size(); i = next++) {
      const auto& g = plan[i];
      results[i].plan = g;
      UTSUSHI_LOG_INFO("evacuating {} -> {}", g.pair.source_qmp, g.pair.destination);
      if (is_remote(g.pair.destination)) {
        SendRemoteOptions o{g.pair.source_qmp, g.pair.destination, options.token, share, options.send, seconds(10)};
        results[i].outcome = send_remote(o);
      } else {
        LocalOptions o{g.pair.source_qmp, g.pair.destination, share, options.send, options.receive};
        results[i].outcome = migrate_local(o);
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < workers; ++w) {
    threads.emplace_back(work);
  }
  for (auto& t : threads) {
    t.join();
  }
  return results;
}

}  // namespace utsushi::livemig
