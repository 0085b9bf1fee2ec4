#include <fmt/core.h>

#include "commands.h"
#include "utsushi/common/log.h"
#include "utsushi/common/progress.h"
#include "utsushi/livemig/evacuate.h"
#include "utsushi/livemig/handshake.h"

namespace utsushi::livemig_cli {

namespace {
struct EvacuateCmd {
  CacheFlag cache;
  std::vector<std::string> guests;
  std::string libvirt;
  std::vector<std::string> to;
  bool undefine_source = false;
  unsigned parallel = 1;
  std::string token_file;
  bool no_measure = false;
  bool copy_storage = false;
  SendFlags flags;
  HoldFlags hold;
};
}  // namespace

void setup_evacuate(cli::Context& ctx) {
  auto o = std::make_shared<EvacuateCmd>();
  auto* sub = ctx.app.add_subcommand("evacuate", "Migrate several guests off this host, a bounded number at a time");
  auto* guest = sub->add_option("--guest", o->guests,
                                "SRC.sock=DEST: a source QMP socket and its destination (a local QMP socket of a QEMU "
                                "started with -incoming defer, or HOST:PORT of a `livemig receive`); repeat per guest");
  auto* uri = sub->add_option("--libvirt", o->libvirt,
                              "Libvirt URI of this host: move every running domain (paused ones are skipped)");
  auto* to = sub->add_option("--to", o->to,
                             "With --libvirt: HOST:PORT of a `livemig receive --libvirt`; repeat to spread the "
                             "guests over several destinations in turn");
  auto* undef = sub->add_flag("--undefine-source", o->undefine_source,
                              "With --libvirt: also remove each moved domain's persistent definition on the source");
  guest->excludes(uri)->excludes(to)->excludes(undef);
  uri->needs(to);
  to->needs(uri);
  undef->needs(uri);
  sub->add_option("--parallel", o->parallel, "Guests migrated at the same time")->check(CLI::Range(1u, 64u));
  sub->add_option("--token-file", o->token_file, "Token file for HOST:PORT destinations");
  sub->add_flag("--no-measure", o->no_measure, "Do not measure dirty rates (order by memory only)");
  sub->add_flag("--copy-storage", o->copy_storage,
                "Also copy every writable disk on a local qcow2 or raw image (send --copy-storage all); the "
                "receivers need --copy-storage, a local QMP destination gets the disks like migrate --copy-storage");
  add_send_flags(*sub, o->flags);
  // The sender cannot hold a destination it does not feed itself: a libvirt
  // receiver always holds its domains, a HOST:PORT one decides with its own --hold.
  for (auto* opt : add_hold_flags(*sub, o->hold)) {
    opt->excludes(uri);
  }
  add_cache_flag(*sub, o->cache);
  sub->callback([&ctx, o] {
    apply_cache_flag(o->cache);
    if (o->guests.empty() == o->libvirt.empty()) {
      throw cli::Failure(Error(Errc::invalid_argument, "give either --guest (repeated) or --libvirt with --to"));
    }
    livemig::EvacuateOptions opts;
    opts.libvirt_uri = o->libvirt;
    opts.destinations = o->to;
    opts.undefine_source = o->undefine_source;
    for (const auto& g : o->guests) {
      opts.guests.push_back(cli::value_or_throw(livemig::parse_evacuate_pair(g)));
    }
    opts.parallel = o->parallel;
    opts.bandwidth = bandwidth_of(o->flags);
    opts.measure_dirty_rate = !o->no_measure;
    opts.send = to_send_options(o->flags);
    apply_hold_flags(o->hold, opts.receive);
    if (o->copy_storage) {
      opts.send.copy_storage = {"all"};
      opts.receive.copy_storage = true;
    }
    if (!o->token_file.empty()) {
      opts.token = cli::value_or_throw(livemig::read_token_file(o->token_file));
    }
    auto plan = cli::value_or_throw(livemig::plan_evacuation(opts));
    auto results = livemig::evacuate(opts, plan);
    nlohmann::json guests = nlohmann::json::array();
    std::size_t failed = 0;
    std::size_t skipped = 0;
    for (const auto& r : results) {
      const auto& rep = r.outcome.report;
      const auto& pair = r.plan.pair;
      auto j = livemig::report_json(rep);
      if (pair.domain.empty()) {
        j["source_qmp"] = pair.source_qmp;
      } else {
        j["domain"] = pair.domain;
        j.erase("source_qmp");
      }
      j["destination"] = pair.destination;
      j["memory_bytes"] = r.plan.memory_bytes;
      j["dirty_bytes_per_sec"] = r.plan.dirty_bytes_per_sec;
      guests.push_back(j);
      failed += r.outcome.error ? 1 : 0;
      skipped += rep.status == livemig::ReportStatus::skipped ? 1 : 0;
      if (!ctx.options.json && !ctx.options.quiet) {
        std::string name = pair.domain.empty() ? pair.source_qmp : pair.domain;
        if (rep.status == livemig::ReportStatus::skipped) {
          fmt::print("{}: skipped: {}\n", name, rep.error);
          continue;
        }
        fmt::print("{} -> {}: {} ({} ms, downtime {} ms, {} on the link){}\n", name, pair.destination, livemig::to_string(rep.status),
                   rep.total_ms, rep.downtime_ms, format_bytes(rep.bytes_on_wire),
                   r.outcome.error ? ": " + r.outcome.error->message() : std::string());
      }
    }
    if (ctx.options.json) {
      nlohmann::json j = {{"type", "result"},
                          {"status", failed == 0 ? "ok" : "partial"},
                          {"migrated", results.size() - failed - skipped},
                          {"failed", failed},
                          {"skipped", skipped},
                          {"guests", guests}};
      cli::print_json_line(j.dump());
    }
    if (failed > 0) {
      log::write(log::Level::error,
                 fmt::format("{} of {} guests stayed on the source", failed, results.size() - skipped));
      ctx.exit_code = cli::k_exit_failure;
    }
  });
}

}  // namespace utsushi::livemig_cli
