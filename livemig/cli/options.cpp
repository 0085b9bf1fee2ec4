#include <fmt/core.h>

#include "commands.h"
#include "utsushi/common/log.h"

namespace utsushi::livemig_cli {

void add_send_flags(CLI::App& sub, SendFlags& f) {
  sub.add_option("--bandwidth", f.bandwidth, "Cap the link at RATE bytes/s (e.g. 32M, 500K); default: uncapped");
  sub.add_option("--downtime", f.downtime_ms, "Target downtime in ms")->check(CLI::Range(1u, 600000u));
  sub.add_option("--max-downtime", f.max_downtime_ms,
                 "Raise the downtime target step-wise up to MS when the guest does not converge (default: no raise)");
  sub.add_option("--time-limit", f.time_limit_s, "Cancel (guest keeps running on the source) after SECONDS")
      ->check(cli::seconds_between(1, 86400));
  sub.add_flag("--auto-converge", f.auto_converge, "Let QEMU throttle the guest's vCPUs when it does not converge");
  sub.add_option("--max-throttle", f.max_throttle, "Upper bound of the vCPU throttle in percent (with --auto-converge)")
      ->check(CLI::Range(1u, 99u));
  sub.add_option("--zstd-level", f.zstd_level,
                 "Pin the zstd level of link batches (default: adapt to the bottleneck, from 1 up to --zstd-max-level)")
      ->check(CLI::Range(1, 19));
  sub.add_option("--zstd-max-level", f.zstd_max_level,
                 "Highest zstd level the adaptive level may reach while the link is the bottleneck (default 9)")
      ->check(CLI::Range(1, 19));
  sub.add_flag("--keep-source", f.keep_source, "Leave the source QEMU paused after success instead of quitting it");
}

void add_cache_flag(CLI::App& sub, CacheFlag& flag) {
  sub.add_option("--cache-dir", flag.dir,
                 "With --copy-storage: remember backing files' content hashes and block indexes in DIR, so that the "
                 "next migration over the same backing file reads it neither to hash nor to index it ('none': "
                 "remember nothing)")
      ->type_name("DIR")
      ->capture_default_str();
}

void apply_cache_flag(const CacheFlag& flag) { livemig::set_disk_cache_dir(flag.dir == "none" ? "" : flag.dir); }

std::array<CLI::Option*, 2> add_hold_flags(CLI::App& sub, HoldFlags& f) {
  auto* hold = sub.add_flag("--hold", f.hold,
                            "Keep the destination paused after loading and start it only on the sender's go (commit "
                            "handshake; give it for destinations started with -S too)");
  auto* go = sub.add_option("--go-timeout", f.go_timeout_s,
                            "With a paused destination: discard it when the sender's go does not come within SECONDS "
                            "(default 30)")
                 ->check(cli::seconds_between(1, 3600));
  return {hold, go};
}

void apply_hold_flags(const HoldFlags& f, livemig::ReceiveOptions& receive) {
  receive.hold = f.hold;
  receive.go_timeout = cli::to_milliseconds(f.go_timeout_s);
}

std::uint64_t bandwidth_of(const SendFlags& f) {
  if (f.bandwidth.empty()) {
    return 0;
  }
  return cli::value_or_throw(livemig::parse_rate(f.bandwidth));
}

livemig::SendOptions to_send_options(const SendFlags& f) {
  livemig::SendOptions o;
  o.policy.downtime_ms = f.downtime_ms;
  o.policy.max_downtime_ms = std::max(f.downtime_ms, f.max_downtime_ms);
  o.policy.time_limit = cli::to_milliseconds(f.time_limit_s);
  o.policy.auto_converge = f.auto_converge;
  o.policy.max_cpu_throttle = f.max_throttle;
  o.zstd_level = f.zstd_level;
  o.zstd_max_level = f.zstd_max_level;
  o.after = f.keep_source ? livemig::SourceAfter::keep : livemig::SourceAfter::quit;
  return o;
}

void finish(cli::Context& ctx, const livemig::Outcome& outcome, const std::string& domain) {
  if (ctx.options.json) {
    auto j = livemig::report_json(outcome.report);
    if (!domain.empty()) {
      j["domain"] = domain;
    }
    cli::print_json_line(j.dump());
  } else if (!ctx.options.quiet) {
    if (!domain.empty()) {
      fmt::print("domain: {}\n", domain);
    }
    fmt::print("{}", livemig::report_text(outcome.report));
    std::fflush(stdout);
  }
  if (outcome.error) {
    log::write(log::Level::error, outcome.error->message());
    ctx.exit_code = cli::exit_code_for(outcome.error->code());
  }
}

void require_one_source(const std::string& a, const std::string& b, const char* a_name, const char* b_name) {
  if (a.empty() == b.empty()) {
    throw cli::Failure(Error(Errc::invalid_argument, fmt::format("give exactly one of {} and {}", a_name, b_name)));
  }
}

}  // namespace utsushi::livemig_cli
