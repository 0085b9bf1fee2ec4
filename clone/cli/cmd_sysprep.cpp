// clone sysprep IMAGE... [--operations a,b,-c] [--list-operations] [--dry-run]
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "utsushi/clone/report.h"
#include "utsushi/clone/sysprep.h"
#include "utsushi/guest/identity_ops.h"

namespace utsushi::clone_cli {
namespace {

struct SysprepCli {
  clone::SysprepOptions o;
  bool list = false;
};

void run_sysprep(cli::Context& ctx, SysprepCli& c) {
  if (c.list) {
    fmt::print("{}", guest::list_operations(guest::identity_operations({})));
    return;
  }
  if (c.o.images.empty()) {
    throw cli::Failure(Error(Errc::invalid_argument, "no IMAGE given"));
  }
  auto results = cli::value_or_throw(
      clone::sysprep_images(c.o, [&](const std::string& image, const std::string& what) { print_event(ctx, image, what); }));
  if (ctx.options.json) {
    nlohmann::json images = nlohmann::json::array();
    for (const auto& r : results) {
      images.push_back(clone::to_json(r));
    }
    cli::print_json_line(nlohmann::json({{"type", "result"}, {"status", "ok"}, {"images", images}}).dump());
    return;
  }
  for (const auto& r : results) {
    fmt::print("{}: machine-id {}\n", r.image, r.machine_id.empty() ? "(first boot)" : r.machine_id);
    for (const auto& [type, fp] : r.host_keys) {
      fmt::print("{}: ssh host key {} {}\n", r.image, type, fp);
    }
    for (const auto& op : r.report.operations) {
      fmt::print("{}: {} {}{}\n", r.image, op.name, guest::operation_status_name(op.status),
                 op.reason.empty() ? "" : " (" + op.reason + ")");
    }
  }
}

}  // namespace

void setup_sysprep(cli::Context& ctx) {
  auto c = std::make_shared<SysprepCli>();
  auto* sub = ctx.app.add_subcommand("sysprep", "Give guest images new identities in place (one appliance launch)");
  sub->add_option("IMAGE", c->o.images, "Images of stopped guests (qcow2 or raw), each one guest");
  sub->add_option("--operations", c->o.operations,
                  "Operations, virt-sysprep's syntax: a,b to choose, -a to drop, defaults, all");
  sub->add_flag("--list-operations", c->list, "List the operations (* = on by default) and exit");
  sub->add_flag("--dry-run", c->o.dry_run, "Plan and report the changes without writing");
  sub->add_flag("--firstboot-machine-id", c->o.firstboot_machine_id,
                "Leave /etc/machine-id in systemd's first-boot state instead of writing a new id");
  sub->add_option("--max-disks", c->o.max_disks, "Disks per appliance launch (default 254)")->check(CLI::Range(1, 254));
  sub->callback([&ctx, c] { run_sysprep(ctx, *c); });
}

}  // namespace utsushi::clone_cli
