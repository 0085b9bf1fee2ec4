// v2p restore IMAGE TARGET [--verify] [--grow auto|none|N] [--boot auto|bios|uefi|none]
//                          [--nic-mac MAC | --nic-name NAME | --nic-dhcp] [--force]
// v2p restore --from HOST:PORT --token-file FILE TARGET [same options]
// v2p plan IMAGE TARGET | --from HOST:PORT --token-file FILE TARGET [same options]
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "utsushi/common/auth.h"
#include "utsushi/common/progress.h"
#include "utsushi/guest/network_config.h"
#include "utsushi/v2p/restore.h"

namespace utsushi::v2p_cli {
namespace {

struct Options {
  std::string image;
  std::string target;
  std::string grow = "auto";
  std::string boot = "auto";
  std::string nic_mac;
  std::string nic_name;
  bool nic_dhcp = false;
  bool no_prepare = false;
  bool force = false;
  bool verify = false;
  std::string format;
  std::string from;
  std::string token_file;
  unsigned retry_for = 60;
  std::string state_dir = std::string(v2p::k_default_state_dir);
  unsigned threads = 0;
};

// IMAGE TARGET, or only TARGET with --from (CLI11 then put it in IMAGE).
void settle_positionals(Options& o) {
  if (!o.from.empty()) {
    if (!o.target.empty()) {
      throw cli::Failure(Error(Errc::invalid_argument, "--from serves the image: give only TARGET"));
    }
    if (o.token_file.empty()) {
      throw cli::Failure(Error(Errc::invalid_argument, "--from needs --token-file"));
    }
    o.target = std::exchange(o.image, std::string());
  }
  if (o.target.empty()) {
    throw cli::Failure(Error(Errc::invalid_argument, o.from.empty() ? "IMAGE and TARGET are required"
                                                                    : "TARGET is required"));
  }
}

v2p::RestoreOptions library_options(const Options& o) {
  v2p::RestoreOptions r;
  if (!o.from.empty()) {
    r.from = v2p::RemoteOptions{o.from, cli::value_or_throw(auth::read_token_file(o.token_file)),
                                std::chrono::seconds(o.retry_for)};
  }
  r.grow = cli::value_or_throw(v2p::parse_grow(o.grow));
  r.prepare.enabled = !o.no_prepare;
  r.prepare.boot = cli::value_or_throw(v2p::parse_boot(o.boot));
  if (!o.nic_mac.empty()) {
    std::string mac = o.nic_mac;
    if (!guest::normalise_mac(mac)) {
      throw cli::Failure(Error(Errc::invalid_argument, "--nic-mac: '" + o.nic_mac + "' is not a MAC address"));
    }
    r.prepare.nic = {v2p::NicChoice::Kind::mac, mac};
  } else if (!o.nic_name.empty()) {
    r.prepare.nic = {v2p::NicChoice::Kind::name, o.nic_name};
  } else if (o.nic_dhcp) {
    r.prepare.nic = {v2p::NicChoice::Kind::dhcp, ""};
  }
  r.force = o.force;
  r.verify = o.verify;
  if (!o.format.empty()) {
    r.image_format = o.format;
  }
  r.state_dir = o.state_dir;
  r.threads = o.threads;
  return r;
}

void print_layout(const v2p::LayoutPlan& l) {
  fmt::print(stderr, "v2p: {} table, {} -> {} (this image needs at least {})\n",
             disk::table_kind_name(l.target.kind), format_bytes(l.source_size), format_bytes(l.target_size),
             format_bytes(l.minimum_target_size));
  for (const v2p::PartitionMove& m : l.partitions) {
    fmt::print(stderr, "v2p:   p{:<2} {:<12} {:>10} at {:>10} -> {:>10} at {:>10}  {}\n", m.number, m.filesystem,
               format_bytes(m.src_length), m.src_offset, format_bytes(m.dst_length), m.dst_offset,
               v2p::fs_action_name(m.action));
  }
  for (const std::string& n : l.notes) {
    fmt::print(stderr, "v2p:   note: {}\n", n);
  }
}

void print_result(nlohmann::json j) {
  j["type"] = "result";
  j["status"] = "ok";
  cli::print_json_line(j.dump());
}

void print_boot(const guest::Report& report) {
  for (const guest::OperationReport& op : report.operations) {
    fmt::print(stderr, "v2p:   {:<16} {}{}\n", op.name, guest::operation_status_name(op.status),
               op.reason.empty() ? "" : " (" + op.reason + ")");
    for (const guest::Change& c : op.changes) {
      fmt::print(stderr, "v2p:     {} {}: {}\n", guest::change_kind_name(c.kind), c.target, c.detail);
    }
  }
}

std::string image_name(const Options& o) { return o.from.empty() ? o.image : o.from; }

void run_restore(cli::Context& ctx, Options o) {
  settle_positionals(o);
  v2p::RestoreOptions r = library_options(o);
  r.prepare.report = cli::event_reporter(ctx, "v2p");
  ProgressReporter progress(choose_progress_mode(ctx.options.json, ctx.options.quiet), "restore");
  r.progress = progress.callback();
  ProgressReporter vprogress(choose_progress_mode(ctx.options.json, ctx.options.quiet), "verify");
  r.verify_progress = vprogress.callback();
  v2p::RestoreResult result = cli::value_or_throw(v2p::restore(o.image, o.target, r));
  progress.finish();
  vprogress.finish();
  if (ctx.options.json) {
    print_result(v2p::to_json(result));
    return;
  }
  if (ctx.options.quiet) {
    return;
  }
  print_layout(result.layout);
  fmt::print(stderr, "v2p: {} -> {}: {} written, {} zeroed, {} discarded{}{} in {:.1f} s\n", image_name(o), o.target,
             format_bytes(result.stats.bytes_written), format_bytes(result.stats.bytes_zeroed),
             format_bytes(result.stats.bytes_discarded), result.resumed ? " (resumed)" : "",
             result.stats.verified_bytes ? ", verified" : "", result.seconds);
  for (const v2p::FsChange& c : result.filesystems) {
    fmt::print(stderr, "v2p:   p{} {} {}: {} -> {}: {}\n", c.partition, c.filesystem, v2p::fs_action_name(c.action),
               format_bytes(c.old_size), format_bytes(c.new_size), c.detail);
  }
  if (result.preparation) {
    print_boot(*result.preparation);
  }
}

void run_plan(cli::Context& ctx, Options o) {
  settle_positionals(o);
  v2p::RestoreOptions r = library_options(o);
  v2p::PlanResult result = cli::value_or_throw(v2p::plan_restore(o.image, o.target, r, !o.no_prepare));
  if (ctx.options.json) {
    print_result(v2p::to_json(result));
    return;
  }
  print_layout(result.layout);
  if (!result.existing_table.empty()) {
    fmt::print(stderr, "v2p: {} carries a {} partition table: restore needs --force\n", o.target, result.existing_table);
  }
  if (result.preparation) {
    print_boot(*result.preparation);
  }
  fmt::print(stderr, "v2p: the image fits {}\n", o.target);
}

void add_common(CLI::App* sub, Options& o) {
  sub->add_option("IMAGE", o.image, "Guest image: qcow2 (with its backing chain), raw, VMDK or OVA (not with --from)");
  sub->add_option("TARGET", o.target, "Block device to restore onto (or an existing file of the disk's size)");
  sub->add_option("--from", o.from, "Read the image `v2p serve` serves at HOST:PORT instead of IMAGE");
  sub->add_option("--token-file", o.token_file, "File holding the token shared with the server (with --from)");
  sub->add_option("--retry-for", o.retry_for,
                  "With --from: how long to keep reconnecting to a server that stopped answering, in seconds")
      ->check(CLI::Range(0u, 86400u));
  sub->add_option("--grow", o.grow,
                  "The partition that takes the difference in size: auto (the last resizable one), none, or a "
                  "partition number");
  sub->add_option("--boot", o.boot, "Boot loader for the target's firmware: auto (the image's), bios, uefi, none")
      ->check(CLI::IsMember({"auto", "bios", "uefi", "none"}));
  auto* mac = sub->add_option("--nic-mac", o.nic_mac, "Keep the VM's NIC name on the hardware NIC with this MAC");
  auto* name = sub->add_option("--nic-name", o.nic_name, "Rename the VM's NIC in the network configuration to NAME");
  auto* dhcp = sub->add_flag("--nic-dhcp", o.nic_dhcp, "DHCP on any Ethernet NIC (systemd-networkd)");
  mac->excludes(name)->excludes(dhcp);
  name->excludes(dhcp);
  sub->add_flag("--no-prepare", o.no_prepare,
                "Copy and resize only: no boot preparation (initramfs, boot loader, fstab, network)");
  sub->add_option("--format", o.format, "Image format (probed when not given)");
  sub->add_option("--state-dir", o.state_dir, "Where the resume journal lives (persistent storage)");
  sub->add_option("-m,--threads", o.threads, "Worker threads (default: one per core, at least 4)");
}

}  // namespace

void setup_restore(cli::Context& ctx) {
  auto o = std::make_shared<Options>();
  auto* sub = ctx.app.add_subcommand("restore", "Restore a guest image onto a disk of any size and make it boot");
  add_common(sub, *o);
  sub->add_flag("--force", o->force, "Overwrite a target that carries a partition table");
  sub->add_flag("--verify", o->verify, "Re-read every written range and compare it with the image");
  sub->callback([&ctx, o] { run_restore(ctx, *o); });
}

void setup_plan(cli::Context& ctx) {
  auto o = std::make_shared<Options>();
  auto* sub = ctx.app.add_subcommand("plan", "Print what restore would do, and whether the image fits, without writing");
  add_common(sub, *o);
  sub->callback([&ctx, o] { run_plan(ctx, *o); });
}

}  // namespace utsushi::v2p_cli
