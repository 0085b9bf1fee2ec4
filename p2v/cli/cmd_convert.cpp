// p2v convert IMAGE... [--profile HW.json] [--name NAME] [--output-dir DIR | --in-place] [--copy]
//                      [--bus virtio|scsi|sata] [--nic virtio|e1000e] [--network NET | --bridge BR]
//                      [--firmware auto|bios|uefi] [--connect URI] [--replace] [--start]
//                      [--no-define] [--dry-run] [--json]
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "utsushi/common/log.h"
#include "utsushi/common/progress.h"
#include "utsushi/p2v/convert.h"
#include "utsushi/virt/accel_option.h"
#include "utsushi/virt/machine_profile.h"

namespace utsushi::p2v_cli {
namespace {

std::string change_line(const guest::Change& c) {
  std::string what = c.detail.empty() ? std::string() : ": " + c.detail;
  switch (c.kind) {
    case guest::ChangeKind::file:
      return fmt::format("{} {}{}", !c.before ? "create" : !c.after ? "remove" : "edit", c.target, what);
    case guest::ChangeKind::command:
      return fmt::format("run {}{}{}", c.target, what,
                         c.exit_code ? fmt::format(" (exit {})", *c.exit_code) : std::string());
    case guest::ChangeKind::service: return fmt::format("service {}{}", c.target, what);
    case guest::ChangeKind::check: return fmt::format("checked {}{}", c.target, what);
    case guest::ChangeKind::note: return fmt::format("NOTE {}{}", c.target, what);
  }
  return c.target;
}

void print_summary(const p2v::Conversion& c, bool dry_run) {
  fmt::print(stderr, "p2v: {} {} ({} on {}, {}) in {:.1f} s\n", dry_run ? "planned the conversion of" : "converted",
             c.name, c.os.product_name.empty() ? c.os.distro : c.os.product_name, c.os.root,
             guest::firmware_name(c.firmware), c.seconds);
  for (const guest::OperationReport& op : c.report.operations) {
    fmt::print(stderr, "p2v:   {:<18} {} in {:.1f} s{}\n", op.name, guest::operation_status_name(op.status), op.seconds,
               op.reason.empty() ? "" : " (" + op.reason + ")");
    for (const guest::Change& ch : op.changes) {
      fmt::print(stderr, "p2v:     {}\n", change_line(ch));
    }
  }
  for (const p2v::ConvertedDisk& d : c.disks) {
    fmt::print(stderr, "p2v:   disk {} ({}){}\n", d.path, d.format, d.path == d.source ? "" : " from " + d.source);
  }
  for (const p2v::VmNic& n : c.nics) {
    fmt::print(stderr, "p2v:   NIC {}{}\n", n.mac, n.guest_name.empty() ? "" : " (the guest calls it " + n.guest_name + ")");
  }
}

p2v::ConvertOptions library_options(const ConvertCliOptions& o, const std::vector<std::string>& images,
                                    ProgressReporter& progress) {
  p2v::ConvertOptions c;
  c.images = images;
  if (!o.profile.empty()) {
    c.profile = cli::value_or_throw(virt::read_profile(o.profile));
  }
  c.name = o.name;
  c.output_dir = o.output_dir;
  c.output = o.in_place ? p2v::OutputMode::in_place : o.copy ? p2v::OutputMode::copy : p2v::OutputMode::overlay;
  c.replace_outputs = o.replace;
  c.bus = cli::value_or_throw(virt::parse_disk_bus(o.bus));
  c.nic = cli::value_or_throw(virt::parse_nic_model(o.nic));
  c.firmware = o.firmware == "uefi"   ? guest::Firmware::uefi
               : o.firmware == "bios" ? guest::Firmware::bios
                                      : guest::Firmware::unknown;
  c.dry_run = o.dry_run;
  c.threads = o.threads;
  c.progress = progress.callback();
  return c;
}

p2v::DomainOptions domain_options(const ConvertCliOptions& o) {
  p2v::DomainOptions d;
  d.uri = o.connect;
  if (!o.bridge.empty()) {
    d.nic_kind = virt::NicKind::bridge;
    d.nic_source = o.bridge;
  } else if (!o.network.empty()) {
    d.nic_source = o.network;
  }
  d.replace = o.replace;
  d.start = o.start;
  d.accel = o.accel;
  return d;
}

}  // namespace

void convert_images(cli::Context& ctx, const ConvertCliOptions& o, const std::vector<std::string>& images) {
  if (o.in_place && !o.output_dir.empty()) {
    throw cli::Failure(Error(Errc::invalid_argument, "--in-place and --output-dir exclude each other"));
  }
  if (o.copy && o.in_place) {
    throw cli::Failure(Error(Errc::invalid_argument, "--copy and --in-place exclude each other"));
  }
  if (o.no_define && (o.start || !o.connect_given.empty())) {
    throw cli::Failure(Error(Errc::invalid_argument, "--no-define excludes --start and --connect"));
  }
  const bool define = !o.no_define;
  const p2v::DomainOptions dopts = domain_options(o);
  ProgressReporter progress(choose_progress_mode(ctx.options.json, ctx.options.quiet), "convert");
  p2v::ConvertOptions c = library_options(o, images, progress);
  if (std::string known = p2v::name_before_inspection(c); define && !known.empty()) {
    cli::value_or_throw(p2v::check_domain_name(known, dopts));  // before any work
  }
  p2v::Conversion conv = cli::value_or_throw(p2v::convert(c));
  progress.finish();
  nlohmann::json domain = nullptr;
  if (define) {
    cli::value_or_throw(p2v::check_domain_name(conv.name, dopts));
  }
  if (o.dry_run) {
    domain = {{"xml", cli::value_or_throw(p2v::domain_xml(conv, dopts))}, {"defined", false}};
  } else {
    cli::value_or_throw(conv.commit());
    if (define) {
      auto defined = p2v::define_domain(conv, dopts);
      if (!defined) {
        conv.discard();  // nothing half-made: no disks without their domain
        throw cli::Failure(std::move(defined).error());
      }
      domain = {{"uri", defined->uri},       {"name", defined->name}, {"uuid", defined->uuid},
                {"xml", defined->xml},       {"defined", true},       {"started", defined->started}};
    } else {
      domain = {{"xml", cli::value_or_throw(p2v::domain_xml(conv, dopts))}, {"defined", false}};
    }
  }
  if (ctx.options.json) {
    nlohmann::json j = p2v::to_json(conv);
    j["type"] = "result";
    j["status"] = "ok";
    j["dry-run"] = o.dry_run;
    j["domain"] = domain;
    cli::print_json_line(j.dump());
  } else if (!ctx.options.quiet) {
    print_summary(conv, o.dry_run);
    if (domain.value("defined", false)) {
      fmt::print(stderr, "p2v: domain {} ({}) defined on {}{}\n", domain["name"].get<std::string>(),
                 domain["uuid"].get<std::string>(), domain["uri"].get<std::string>(),
                 domain["started"].get<bool>() ? " and started" : "");
    }
  }
}

void add_convert_options(CLI::App& sub, ConvertCliOptions& o) {
  const std::size_t before = sub.get_options().size();
  sub.add_option("--profile", o.profile, "Hardware profile written by p2v capture (NICs with their MACs, CPUs, memory)");
  sub.add_option("--name", o.name, "Name of the guest (default: the profile's or the guest's hostname)");
  sub.add_option("--bus", o.bus, "Disk bus of the VM")->check(CLI::IsMember({"virtio", "scsi", "sata"}));
  sub.add_option("--nic", o.nic, "NIC model of the VM")->check(CLI::IsMember({"virtio", "e1000e"}));
  sub.add_option("--network", o.network, "libvirt network the NICs join (default: default)");
  sub.add_option("--bridge", o.bridge, "Host bridge the NICs join instead of a libvirt network")->excludes("--network");
  sub.add_option("--firmware", o.firmware, "Firmware of the VM (auto: the guest's own)")
      ->check(CLI::IsMember({"auto", "bios", "uefi"}));
  sub.add_option_function<std::string>(
      "--connect",
      [&o](const std::string& uri) {
        o.connect = uri;
        o.connect_given = uri;
      },
      "libvirt URI the domain is defined on (default qemu:///system)");
  sub.add_flag("--replace", o.replace, "Replace a domain of that name and converted images already there");
  sub.add_flag("--start", o.start, "Start the domain once defined");
  sub.add_flag("--no-define", o.no_define, "Convert the disks only; define no domain (its XML is in the --json result)");
  virt::cli::add_accel_option(sub, o.accel);
  std::vector<CLI::Option*> all = sub.get_options();
  for (std::size_t i = before; i < all.size(); ++i) {
    all[i]->group(k_convert_group);
  }
}

void setup_convert(cli::Context& ctx) {
  auto o = std::make_shared<ConvertCliOptions>();
  auto images = std::make_shared<std::vector<std::string>>();
  auto* sub = ctx.app.add_subcommand("convert", "Make captured disks boot as a KVM guest and define it in libvirt");
  sub->add_option("IMAGE", *images, "The captured machine's disk images, in its disk order")->required();
  sub->add_option("--output-dir", o->output_dir, "Directory for the converted images (captured images are never written)");
  sub->add_flag("--in-place", o->in_place, "Convert the captured images themselves");
  sub->add_flag("--copy", o->copy, "Write full qcow2 copies instead of thin overlays over the captured images");
  sub->add_flag("--dry-run", o->dry_run, "Print every change conversion would make; write nothing");
  sub->add_option("-m,--threads", o->threads, "Worker threads for --copy (default: one per core)");
  add_convert_options(*sub, *o);
  sub->callback([&ctx, o, images] { convert_images(ctx, *o, *images); });
}

}  // namespace utsushi::p2v_cli
