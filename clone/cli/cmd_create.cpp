// clone create GOLDEN (--count N [--name-pattern P] | --names a,b,c) [--linked | --full] ...
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "utsushi/clone/create.h"
#include "utsushi/clone/report.h"
#include "utsushi/common/progress.h"
#include "utsushi/virt/accel_option.h"

namespace utsushi::clone_cli {
namespace {

struct CreateCli {
  clone::CreateOptions o;
  std::vector<std::string> uris;
  bool full = false;
  bool linked = false;
  std::uint64_t memory_mib = 0;
  unsigned cpus = 0;
  unsigned start_interval = 10;
  std::optional<virt::Accel> accel;
};

void print_summary(const clone::CreateReport& r) {
  for (const clone::CloneRecord& c : r.clones) {
    std::string keys;
    for (const auto& [type, fp] : c.host_keys) {
      keys += fmt::format(" {}={}", type, fp);
    }
    fmt::print("{} {} {} {} {}{}{}\n", c.name, c.state, c.uri, c.macs.empty() ? "-" : c.macs.front(),
               c.address.empty() ? "-" : c.address, keys, c.started ? " started" : "");
  }
}

void run_create(cli::Context& ctx, CreateCli& c) {
  if (c.full && c.linked) {
    throw cli::Failure(Error(Errc::invalid_argument, "--linked and --full exclude each other"));
  }
  clone::CreateOptions& o = c.o;
  o.kind = c.full ? clone::CloneKind::full : clone::CloneKind::linked;
  if (!c.uris.empty()) {
    o.uris = c.uris;
  }
  if (c.memory_mib != 0) {
    o.memory_bytes = c.memory_mib << 20;
  }
  if (c.cpus != 0) {
    o.cpus = c.cpus;
  }
  o.start_interval = std::chrono::seconds(c.start_interval);
  o.accel = c.accel;
  std::size_t done = 0;
  std::size_t total = o.names.empty() ? o.count : o.names.size();
  clone::CreateEvents events;
  events.on_phase = [&](const std::string& what) { print_event(ctx, "", what); };
  events.on_clone = [&](const std::string& name, const std::string& what) {
    bool final = what == "complete" || what.starts_with("skipped");
    done += final ? 1 : 0;
    print_event(ctx, name, final ? fmt::format("{} [{}/{}]", what, done, total) : what);
  };
  ProgressReporter upload(choose_progress_mode(ctx.options.json, ctx.options.quiet), "upload");
  events.upload_progress = upload.callback();
  clone::CreateReport report = cli::value_or_throw(clone::create_clones(o, events));
  upload.finish();
  if (ctx.options.json) {
    nlohmann::json j = clone::to_json(report);
    j["type"] = "result";
    j["status"] = "ok";
    cli::print_json_line(j.dump());
  } else {
    print_summary(report);
  }
}

}  // namespace

void setup_create(cli::Context& ctx) {
  auto c = std::make_shared<CreateCli>();
  clone::CreateOptions& o = c->o;
  auto* sub = ctx.app.add_subcommand("create", "Create customised clones of a golden and define them in libvirt");
  sub->add_option("GOLDEN", o.golden, "The golden: an image of any format (qcow2, raw, VMDK, OVA...) or domain:NAME")
      ->required();
  auto* count = sub->add_option("--count", o.count, "Number of clones, named by --name-pattern")->check(CLI::Range(1, 100000));
  sub->add_option("--name-pattern", o.name_pattern, "Clone names: {n} numbers them from 1 ({n:02} pads)")
      ->needs(count);
  sub->add_option("--names", o.names, "Clone names, comma-separated")->delimiter(',')->excludes(count);
  sub->add_flag("--linked", c->linked, "qcow2 overlays over the golden (the default)");
  sub->add_flag("--full", c->full, "Full copies of the golden's used data");
  sub->add_option("--pool", o.pool_dir, "Directory of the storage pool on every host (default: the pool 'default')");
  sub->add_option("-c,--connect", c->uris, "libvirt URI; repeat to spread the clones over hosts (default qemu:///system)");
  sub->add_option("--hostname-pattern", o.hostname_pattern, "Host names: {name} is the clone's name, {n} its number");
  auto* ip = sub->add_option("--ip", o.ip, "First static address with its prefix (10.0.0.10/24): one each, in order");
  sub->add_option("--gateway", o.gateway, "Default gateway (with --ip)")->needs(ip);
  sub->add_option("--dns", o.dns, "Name server (with --ip); repeatable")->needs(ip);
  sub->add_flag("--dhcp", o.dhcp, "Address by DHCP, in the network system the golden uses")->excludes(ip);
  sub->add_option("--ssh-key", o.ssh_key_files, "File of SSH public keys for root; repeatable");
  sub->add_option("--root-password-file", o.root_password_file, "File whose first line is root's password (stored hashed)");
  sub->add_option("--run", o.run_scripts, "Script run inside each clone before it is defined; repeatable");
  sub->add_option("--firstboot", o.firstboot_scripts, "Script run once at each clone's first boot; repeatable");
  sub->add_option("--memory", c->memory_mib, "Memory in MiB (default 1024, or the template's)")->check(CLI::Range(16, 1 << 24));
  sub->add_option("--cpus", c->cpus, "Virtual CPUs (default 1, or the template's)")->check(CLI::Range(1, 4096));
  sub->add_option("--network", o.network, "NIC of image goldens: network:NAME, bridge:DEVICE, user or none")
      ->capture_default_str();
  sub->add_option("--operations", o.operations, "Identity operations, virt-sysprep's syntax (see clone sysprep "
                                                "--list-operations)");
  sub->add_flag("--firstboot-machine-id", o.firstboot_machine_id,
                "Leave /etc/machine-id in systemd's first-boot state instead of writing a new id");
  auto* start = sub->add_flag("--start", o.start, "Start the clones once defined");
  sub->add_option("--start-batch", o.start_batch, "Clones started at once")->needs(start)->check(CLI::Range(1, 10000));
  sub->add_option("--start-interval", c->start_interval, "Seconds between start batches")->needs(start);
  sub->add_option("--work-dir", o.work_dir, "Local directory for staging and converted goldens")->capture_default_str();
  sub->add_option("--max-disks", o.max_disks, "Disks per appliance launch (default 254)")->check(CLI::Range(1, 254));
  sub->add_option("--appliances", o.appliances, "Appliance launches at once")->check(CLI::Range(1, 64));
  virt::cli::add_accel_option(*sub, c->accel);
  sub->callback([&ctx, c] { run_create(ctx, *c); });
}

}  // namespace utsushi::clone_cli
