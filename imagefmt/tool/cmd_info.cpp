#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/image_ops.h"

namespace utsushi::img {
namespace {

struct InfoOptions {
  std::string image;
  std::string format;
};

nlohmann::json details_json(const imagefmt::ImageInfo& info) {
  nlohmann::json j = nlohmann::json::object();
  if (info.qcow2) {
    const auto& d = *info.qcow2;
    j["compat"] = d.version == 2 ? "0.10" : "1.1";
    j["cluster-size"] = d.cluster_size;
    j["refcount-bits"] = d.refcount_bits;
    j["compression-type"] = d.compression_type;
    j["extended-l2"] = d.extended_l2;
    j["lazy-refcounts"] = d.lazy_refcounts;
    j["corrupt"] = d.corrupt;
    j["dirty"] = d.dirty;
    nlohmann::json snaps = nlohmann::json::array();
    for (const auto& s : d.snapshots) {
      snaps.push_back({{"id", s.id},
                       {"name", s.name},
                       {"vm-state-size", s.vm_state_size},
                       {"date-sec", s.date_sec},
                       {"date-nsec", s.date_nsec},
                       {"vm-clock-nsec", s.vm_clock_nsec}});
    }
    j["snapshots"] = snaps;
  }
  return j;
}

void run_info(cli::Context& ctx, const InfoOptions& o) {
  auto format = o.format.empty() ? std::nullopt : std::optional<std::string>(o.format);
  auto info = cli::value_or_throw(imagefmt::image_info(o.image, format));
  if (ctx.options.json) {
    nlohmann::json chain = nlohmann::json::array();
    for (const auto& b : info.backing_chain) {
      chain.push_back({{"filename", b.filename}, {"format", b.format}, {"virtual-size", b.virtual_size}});
    }
    nlohmann::json j = {{"type", "result"},       {"status", "ok"},
                        {"filename", info.filename}, {"format", info.format},
                        {"virtual-size", info.virtual_size}, {"actual-size", info.actual_size},
                        {"data-bytes", info.data_bytes}, {"backing-chain", chain}};
    if (info.qcow2) {
      j["format-specific"] = details_json(info);
      if (!info.qcow2->backing_file.empty()) {
        j["backing-filename"] = info.qcow2->backing_file;
        j["full-backing-filename"] = info.qcow2->backing_file_resolved;
        j["backing-filename-format"] = info.qcow2->backing_format;
      }
    }
    cli::print_json_line(j.dump());
    return;
  }
  fmt::print("image: {}\nfile format: {}\nvirtual size: {} ({} bytes)\ndisk size: {}\ndata: {}\n", info.filename,
             info.format, format_bytes(info.virtual_size), info.virtual_size, format_bytes(info.actual_size),
             format_bytes(info.data_bytes));
  if (info.qcow2) {
    const auto& d = *info.qcow2;
    fmt::print("cluster_size: {}\n", d.cluster_size);
    if (!d.backing_file.empty()) {
      fmt::print("backing file: {} (actual path: {})\nbacking file format: {}\n", d.backing_file,
                 d.backing_file_resolved, d.backing_format);
    }
    if (!d.snapshots.empty()) {
      fmt::print("Snapshot list:\n{:<10}{:<20}{:>12}\n", "ID", "TAG", "VM SIZE");
      for (const auto& s : d.snapshots) {
        fmt::print("{:<10}{:<20}{:>12}\n", s.id, s.name, format_bytes(s.vm_state_size));
      }
    }
    fmt::print("Format specific information:\n    compat: {}\n    compression type: {}\n    refcount bits: {}\n"
               "    extended l2: {}\n    corrupt: {}\n",
               d.version == 2 ? "0.10" : "1.1", d.compression_type, d.refcount_bits, d.extended_l2, d.corrupt);
  }
  for (const auto& b : info.backing_chain) {
    fmt::print("backing chain: {} ({}, {} bytes)\n", b.filename, b.format, b.virtual_size);
  }
}

}  // namespace

void setup_info(cli::Context& ctx) {
  auto opts = std::make_shared<InfoOptions>();
  auto* sub = ctx.app.add_subcommand("info", "Show format, virtual size and allocation of an image");
  sub->add_option("-f,--format", opts->format, "Image format (probed when omitted)");
  sub->add_option("IMAGE", opts->image, "Image file or block device")->required();
  sub->callback([&ctx, opts] { run_info(ctx, *opts); });
}

}  // namespace utsushi::img
