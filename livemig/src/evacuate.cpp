#include "utsushi/livemig/evacuate.h"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <thread>

#include "utsushi/common/log.h"
#include "utsushi/livemig/libvirt_endpoints.h"
#include "utsushi/livemig/qemu_control.h"
#include "utsushi/livemig/qmp.h"

namespace utsushi::livemig {

using namespace std::chrono;
using nlohmann::json;

Result<EvacuatePair> parse_evacuate_pair(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    return fail(Errc::invalid_argument, fmt::format("'{}' is not SOURCE.sock=DESTINATION", text));
  }
  EvacuatePair pair;
  pair.source_qmp = text.substr(0, eq);
  pair.destination = text.substr(eq + 1);
  return pair;
}

namespace {

bool is_remote(const std::string& dest) { return dest.find('/') == std::string::npos && dest.find(':') != std::string::npos; }

// The source monitor of one guest: its QMP socket, or its libvirt domain.
Result<std::unique_ptr<Monitor>> open_source(const EvacuatePair& pair, LibvirtHost* host) {
  if (!pair.domain.empty()) {
    return host->monitor(pair.domain);
  }
  auto qmp = UTSUSHI_TRY(QmpClient::connect(pair.source_qmp, milliseconds(15000)));
  return std::unique_ptr<Monitor>(std::make_unique<QmpClient>(std::move(qmp)));
}

std::string source_name(const EvacuatePair& pair) { return pair.domain.empty() ? pair.source_qmp : pair.domain; }

Result<GuestPlan> measure(const EvacuatePair& pair, LibvirtHost* host, bool dirty_rate) {
  GuestPlan g;
  g.pair = pair;
  auto mon = UTSUSHI_TRY(open_source(pair, host));
  auto& qmp = *mon;
  UTSUSHI_TRY(preflight_source(qmp));
  g.memory_bytes = UTSUSHI_TRY(guest_memory_bytes(qmp));
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

// Libvirt mode: one pair per active domain, destinations not yet assigned.
Result<std::vector<EvacuatePair>> host_guests(LibvirtHost& host, std::vector<GuestPlan>& skipped) {
  std::vector<EvacuatePair> pairs;
  for (auto& g : UTSUSHI_TRY(host.list_guests())) {
    EvacuatePair pair;
    pair.domain = g.name;
    if (!g.skip_reason.empty()) {
      GuestPlan p;
      p.pair = pair;
      p.skip_reason = g.skip_reason;
      skipped.push_back(std::move(p));
      continue;
    }
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

}  // namespace

Result<std::vector<GuestPlan>> plan_evacuation(const EvacuateOptions& options) {
  std::shared_ptr<LibvirtHost> host;
  std::vector<EvacuatePair> pairs = options.guests;
  std::vector<GuestPlan> skipped;
  if (!options.libvirt_uri.empty()) {
    if (options.destinations.empty()) {
      return fail(Errc::invalid_argument, "evacuating a libvirt host needs at least one destination");
    }
    host = UTSUSHI_TRY(LibvirtHost::open(options.libvirt_uri));
    pairs = UTSUSHI_TRY(host_guests(*host, skipped));
  }
  std::vector<GuestPlan> plan;
  for (const auto& pair : pairs) {
    auto g = measure(pair, host.get(), options.measure_dirty_rate);
    if (!g && host) {
      // One domain livemig cannot measure does not stop the others: it is
      // tried last, and its move reports why it stays.
      UTSUSHI_LOG_WARN("cannot measure {}: {}", pair.domain, g.error().message());
      GuestPlan last;
      last.pair = pair;
      last.cost = UINT64_MAX;
      plan.push_back(std::move(last));
      continue;
    }
    plan.push_back(UTSUSHI_TRY_CTX(std::move(g), source_name(pair)));
  }
  std::stable_sort(plan.begin(), plan.end(), [](const GuestPlan& a, const GuestPlan& b) { return a.cost < b.cost; });
  if (host) {
    for (std::size_t i = 0; i < plan.size(); ++i) {
      plan[i].pair.destination = options.destinations[i % options.destinations.size()];
    }
  }
  plan.insert(plan.end(), skipped.begin(), skipped.end());
  return plan;
}

std::vector<GuestOutcome> evacuate(const EvacuateOptions& options, const std::vector<GuestPlan>& plan) {
  std::vector<GuestOutcome> results(plan.size());
  std::shared_ptr<LibvirtHost> host;
  std::optional<Error> host_error;
  if (!options.libvirt_uri.empty()) {
    if (auto h = LibvirtHost::open(options.libvirt_uri); h) {
      host = *h;
    } else {
      host_error = h.error();
    }
  }
  std::size_t movable = 0;
  for (const auto& g : plan) {
    movable += g.skip_reason.empty() ? 1 : 0;
  }
  std::atomic<std::size_t> next{0};
  unsigned workers = std::max(1u, std::min<unsigned>(options.parallel, static_cast<unsigned>(movable)));
  std::uint64_t share = options.bandwidth / std::max(1u, workers);
  auto move_one = [&](const GuestPlan& g) -> Outcome {
    if (!g.pair.domain.empty()) {
      if (!host) {
        Outcome o;
        o.report.error = host_error->message();
        o.error = host_error;
        return o;
      }
      SendLibvirtOptions o{g.pair.domain,
                           {{}, g.pair.destination, options.token, share, options.send, seconds(10)},
                           options.undefine_source};
      return send_libvirt(*host, o);
    }
    if (is_remote(g.pair.destination)) {
      SendRemoteOptions o{g.pair.source_qmp, g.pair.destination, options.token, share, options.send, seconds(10)};
      return send_remote(o);
    }
    LocalOptions o{g.pair.source_qmp, g.pair.destination, share, options.send, options.receive};
    return migrate_local(o);
  };
  auto work = [&] {
    for (std::size_t i = next++; i < plan.size(); i = next++) {
      const auto& g = plan[i];
      results[i].plan = g;
      if (!g.skip_reason.empty()) {
        results[i].outcome.report.status = ReportStatus::skipped;
        results[i].outcome.report.error = g.skip_reason;
        results[i].outcome.report.source_state = "untouched";
        continue;
      }
      UTSUSHI_LOG_INFO("evacuating {} -> {}", source_name(g.pair), g.pair.destination);
      results[i].outcome = move_one(g);
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
