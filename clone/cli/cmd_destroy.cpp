// clone destroy NAME|PATTERN... [--connect URI]... [--dry-run]
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "utsushi/clone/destroy.h"
#include "utsushi/clone/report.h"

namespace utsushi::clone_cli {
namespace {

struct DestroyCli {
  clone::DestroyOptions o;
  std::vector<std::string> uris;
};

void run_destroy(cli::Context& ctx, DestroyCli& c) {
  if (!c.uris.empty()) {
    c.o.uris = c.uris;
  }
  auto report = cli::value_or_throw(clone::destroy_clones(
      c.o, [&](const std::string& name, const std::string& what) { print_event(ctx, name, what); }));
  if (ctx.options.json) {
    nlohmann::json j = clone::to_json(report);
    j["type"] = "result";
    j["status"] = "ok";
    cli::print_json_line(j.dump());
    return;
  }
  for (const std::string& d : report.left_alone) {
    fmt::print(stderr, "clone: left alone (not made by clone): {}\n", d);
  }
}

}  // namespace

void setup_destroy(cli::Context& ctx) {
  auto c = std::make_shared<DestroyCli>();
  auto* sub = ctx.app.add_subcommand("destroy", "Stop, undefine and delete the disks of clones made by clone");
  sub->add_option("NAME", c->o.patterns, "Clone names or shell patterns ('web-*')")->required();
  sub->add_option("-c,--connect", c->uris, "libvirt URI; repeatable (default qemu:///system)");
  sub->add_flag("--dry-run", c->o.dry_run, "List what would be destroyed");
  sub->callback([&ctx, c] { run_destroy(ctx, *c); });
}

}  // namespace utsushi::clone_cli
