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

void run_info(cli::Context& ctx, const InfoOptions& o) {
  auto format = o.format.empty() ? std::nullopt : std::optional<std::string>(o.format);
  auto info = cli::value_or_throw(imagefmt::image_info(o.image, format));
  if (ctx.options.json) {
    nlohmann::json j = {{"type", "result"},       {"status", "ok"},
                        {"filename", info.filename}, {"format", info.format},
                        {"virtual-size", info.virtual_size}, {"actual-size", info.actual_size},
                        {"data-bytes", info.data_bytes}};
    cli::print_json_line(j.dump());
    return;
  }
  fmt::print("image: {}\nfile format: {}\nvirtual size: {} ({} bytes)\ndisk size: {}\ndata: {}\n", info.filename,
             info.format, format_bytes(info.virtual_size), info.virtual_size, format_bytes(info.actual_size),
             format_bytes(info.data_bytes));
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
