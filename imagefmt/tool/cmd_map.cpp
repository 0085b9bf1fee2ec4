#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "utsushi/imagefmt/image_ops.h"

namespace utsushi::img {
namespace {

struct MapOptions {
  std::string image;
  std::string format;
};

void run_map(cli::Context& ctx, const MapOptions& o) {
  auto format = o.format.empty() ? std::nullopt : std::optional<std::string>(o.format);
  auto extents = cli::value_or_throw(imagefmt::image_map(o.image, format));
  if (ctx.options.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& e : extents) {
      nlohmann::json item = {{"start", e.offset},
                             {"length", e.length},
                             {"data", e.type == imagefmt::ExtentType::data},
                             {"zero", e.type != imagefmt::ExtentType::data},
                             {"type", std::string(imagefmt::extent_type_name(e.type))}};
      if (e.host_offset != imagefmt::k_no_host_offset) {
        item["offset"] = e.host_offset;  // qemu-img map's name for the host offset
      }
      list.push_back(std::move(item));
    }
    cli::print_json_line(nlohmann::json{{"type", "result"}, {"status", "ok"}, {"extents", list}}.dump());
    return;
  }
  fmt::print("{:>20} {:>20} {:>20} {}\n", "Offset", "Length", "Host offset", "Type");
  for (const auto& e : extents) {
    std::string host = e.host_offset == imagefmt::k_no_host_offset ? "-" : fmt::format("{:#x}", e.host_offset);
    fmt::print("{:>#20x} {:>#20x} {:>20} {}\n", e.offset, e.length, host, imagefmt::extent_type_name(e.type));
  }
}

}  // namespace

void setup_map(cli::Context& ctx) {
  auto opts = std::make_shared<MapOptions>();
  auto* sub = ctx.app.add_subcommand("map", "List the image's extents (data, zero, hole)");
  sub->add_option("-f,--format", opts->format, "Image format (probed when omitted)");
  sub->add_option("IMAGE", opts->image, "Image file or block device")->required();
  sub->callback([&ctx, opts] { run_map(ctx, *opts); });
}

}  // namespace utsushi::img
