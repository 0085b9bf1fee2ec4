#include <fmt/core.h>

#include "commands.h"
#include "utsushi/common/log.h"
#include "utsushi/livemig/evacuate.h"
#include "utsushi/livemig/handshake.h"

namespace utsushi::livemig_cli {

namespace {
struct EvacuateCmd {
  std::vector<std::string> guests;
  unsigned parallel = 1;
  std::string token_file;
  bool no_measure = false;
  SendFlags flags;
};
}  // namespace

void setup_evacuate(cli::Context& ctx) {
  auto o = std::make_shared<EvacuateCmd>();
  auto* sub = ctx.app.add_subcommand("evacuate", "Migrate several guests off this host, a bounded number at a time");
  sub->add_option("--guest", o->guests,
                  "SRC.sock=DEST: a source QMP socket and its destination (a local QMP socket of a QEMU started "
                  "with -incoming defer, or HOST:PORT of a `livemig receive`); repeat per guest")
      ->required();
  sub->add_option("--parallel", o->parallel, "Guests migrated at the same time")->check(CLI::Range(1u, 64u));
  sub->add_option("--token-file", o->token_file, "Token file for HOST:PORT destinations");
  sub->add_flag("--no-measure", o->no_measure, "Do not measure dirty rates (order by memory only)");
  add_send_flags(*sub, o->flags);
  sub->callback([&ctx, o] {
    livemig::EvacuateOptions opts;
    for (const auto& g : o->guests) {
      opts.guests.push_back(cli::value_or_throw(livemig::parse_evacuate_pair(g)));
    }
    opts.parallel = o->parallel;
    opts.bandwidth = bandwidth_of(o->flags);
    opts.measure_dirty_rate = !o->no_measure;
    opts.send = to_send_options(o->flags);
    if (!o->token_file.empty()) {
      opts.token = cli::value_or_throw(livemig::read_token_file(o->token_file));
    }
    auto plan = cli::value_or_throw(livemig::plan_evacuation(opts));
    auto results = livemig::evacuate(opts, plan);
    nlohmann::json guests = nlohmann::json::array();
    std::size_t failed = 0;
    for (const auto& r : results) {
      auto j = livemig::report_json(r.outcome.report);
      j["source_qmp"] = r.plan.pair.source_qmp;
      j["destination"] = r.plan.pair.destination;
      j["memory_bytes"] = r.plan.memory_bytes;
      j["dirty_bytes_per_sec"] = r.plan.dirty_bytes_per_sec;
      guests.push_back(j);
      if (r.outcome.error) {
        ++failed;
      }
      if (!ctx.options.json && !ctx.options.quiet) {
        fmt::print("{} -> {}: {} ({} ms, downtime {} ms, {} on the link){}\n", r.plan.pair.source_qmp,
                   r.plan.pair.destination, r.outcome.report.status, r.outcome.report.total_ms,
                   r.outcome.report.downtime_ms, r.outcome.report.bytes_on_wire,
                   r.outcome.error ? ": " + r.outcome.error->message() : std::string());
      }
    }
    if (ctx.options.json) {
      nlohmann::json j = {{"type", "result"},
                          {"status", failed == 0 ? "ok" : "partial"},
                          {"migrated", results.size() - failed},
                          {"failed", failed},
                          {"guests", guests}};
      cli::print_json_line(j.dump());
    }
    if (failed > 0) {
      log::write(log::Level::error, fmt::format("{} of {} guests stayed on the source", failed, results.size()));
      ctx.exit_code = cli::k_exit_failure;
    }
  });
}

}  // namespace utsushi::livemig_cli
