#include <fmt/core.h>

#include <filesystem>

#include "commands.h"
#include "utsushi/common/log.h"
#include "utsushi/livemig/handshake.h"
#include "utsushi/livemig/libvirt_endpoints.h"

namespace utsushi::livemig_cli {

namespace {
struct ReceiveCmd {
  CacheFlag cache;
  std::string listen;
  std::string qmp;
  std::string libvirt;
  unsigned sessions = 1;
  bool persistent = false;
  std::string token_file;
  double accept_timeout_s = 600;
  std::string port_file;
  bool copy_storage = false;
  std::string storage_dir;
  HoldFlags hold;
};

// Libvirt mode: one report per session, then a summary.
void finish_libvirt(cli::Context& ctx, const livemig::ReceiveLibvirtResult& res) {
  nlohmann::json sessions = nlohmann::json::array();
  std::size_t failed = 0;
  for (const auto& s : res.sessions) {
    auto j = livemig::report_json(s.outcome.report);
    j["domain"] = s.domain;
    sessions.push_back(j);
    failed += s.outcome.error ? 1 : 0;
    if (!ctx.options.json && !ctx.options.quiet) {
      fmt::print("{}: {} ({} ms, {} bytes to QEMU){}\n", s.domain.empty() ? "?" : s.domain, to_string(s.outcome.report.status),
                 s.outcome.report.total_ms, s.outcome.report.bytes_to_qemu,
                 s.outcome.error ? ": " + s.outcome.error->message() : std::string());
    }
  }
  bool ok = failed == 0 && !res.error;
  if (ctx.options.json) {
    nlohmann::json j = {{"type", "result"},
                        {"status", ok ? "ok" : (res.sessions.size() > failed ? "partial" : "failed")},
                        {"received", res.sessions.size() - failed},
                        {"failed", failed},
                        {"sessions", sessions}};
    if (res.error) {
      j["error"] = res.error->message();
    }
    cli::print_json_line(j.dump());
  }
  if (res.error) {
    log::write(log::Level::error, res.error->message());
  }
  if (failed > 0) {
    log::write(log::Level::error, fmt::format("{} of {} sessions failed", failed, res.sessions.size()));
  }
  if (!ok) {
    ctx.exit_code = failed == 0 ? cli::exit_code_for(res.error->code()) : cli::k_exit_failure;
  }
}
}  // namespace

void setup_receive(cli::Context& ctx) {
  auto o = std::make_shared<ReceiveCmd>();
  auto* sub = ctx.app.add_subcommand(
      "receive", "Receive migrations into a QEMU started with -incoming defer, or as new libvirt domains");
  sub->add_option("--listen", o->listen, "ADDR:PORT to listen on (port 0: any free port)")->required();
  auto* qmp = sub->add_option("--qmp", o->qmp, "QMP socket of the destination QEMU");
  auto* uri = sub->add_option("--libvirt", o->libvirt,
                              "Libvirt URI of this host: each sender's domain is started here (transient, paused, "
                              "with -incoming defer) and resumed once its memory arrived");
  auto* sessions = sub->add_option("--sessions", o->sessions, "With --libvirt: accept N migrations, concurrently")
                       ->check(CLI::Range(1u, 256u));
  auto* persistent =
      sub->add_flag("--persistent", o->persistent, "With --libvirt: define each received domain persistently");
  auto* disks = sub->add_flag("--copy-storage", o->copy_storage,
                              "Take the sender's disks through a writable NBD export: with --qmp into this QEMU's "
                              "disks of the same devices (same format and virtual size; an overlay over a backing "
                              "file of the same content), with --libvirt into images created in --storage-dir; "
                              "implies --hold");
  auto* storage = sub->add_option("--storage-dir", o->storage_dir,
                                  "With --libvirt --copy-storage: create each received disk here (same format and "
                                  "virtual size, a qcow2 overlay over the backing file at the source's path) "
                                  "under the source image's file name, and start the domain on it")
                      ->check(CLI::ExistingDirectory);
  qmp->excludes(uri)->excludes(sessions)->excludes(persistent)->excludes(storage);
  sessions->needs(uri);
  persistent->needs(uri);
  storage->needs(disks);
  sub->add_option("--token-file", o->token_file, "File holding the shared token (>= 16 bytes)")->required();
  sub->add_option("--accept-timeout", o->accept_timeout_s, "Give up when no sender authenticated within SECONDS")
      ->check(cli::seconds_between(0.001, 31.0 * 86400));
  sub->add_option("--port-file", o->port_file, "Write the listening port to FILE once listening");
  add_hold_flags(*sub, o->hold);
  add_cache_flag(*sub, o->cache);
  sub->callback([&ctx, o] {
    apply_cache_flag(o->cache);
    require_one_source(o->qmp, o->libvirt, "--qmp", "--libvirt");
    std::string token = cli::value_or_throw(livemig::read_token_file(o->token_file));
    auto accept_timeout = cli::to_milliseconds(o->accept_timeout_s);
    std::string port_file = o->port_file;
    auto on_listening = [port_file](std::uint16_t port) { cli::write_port_file(port_file, port); };
    if (!o->libvirt.empty()) {
      livemig::ReceiveLibvirtOptions opts;
      opts.uri = o->libvirt;
      opts.serve = {o->listen, token, o->sessions, accept_timeout, on_listening};
      opts.persistent = o->persistent;
      apply_hold_flags(o->hold, opts.receive);  // libvirt domains are held whatever --hold says (started paused)
      opts.receive.copy_storage = o->copy_storage;
      if (o->copy_storage && o->storage_dir.empty()) {
        throw cli::Failure(Error(Errc::invalid_argument, "--libvirt --copy-storage needs --storage-dir DIR"));
      }
      opts.storage_dir = o->storage_dir.empty() ? std::string() : std::filesystem::absolute(o->storage_dir).string();
      finish_libvirt(ctx, livemig::receive_libvirt(opts));
      return;
    }
    livemig::ReceiveRemoteOptions opts;
    opts.qmp_path = o->qmp;
    opts.listen = o->listen;
    opts.token = token;
    opts.accept_timeout = accept_timeout;
    opts.on_listening = on_listening;
    apply_hold_flags(o->hold, opts.receive);
    opts.receive.copy_storage = o->copy_storage;
    finish(ctx, livemig::receive_remote(opts));
  });
}

}  // namespace utsushi::livemig_cli
