#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "utsushi/imagefmt/image_ops.h"
#include "utsushi/imagefmt/ova.h"
#include "utsushi/imagefmt/registry.h"

namespace utsushi::img {
namespace {

// qemu-img check's exit codes (QEMU's docs/tools/qemu-img.rst, "check").
constexpr int k_check_clean = 0;
constexpr int k_check_failed = 1;
constexpr int k_check_corrupt = 2;
constexpr int k_check_leaks = 3;
constexpr int k_check_unsupported = 63;

// As qemu-img check: an incomplete check fails (1) before corruptions (2) and
// leaks (3) are considered.
int check_exit_code(const imagefmt::CheckReport& rep) {
  if (rep.check_errors > 0) {
    return k_check_failed;
  }
  return rep.corruptions > 0 ? k_check_corrupt : rep.leaks > 0 ? k_check_leaks : k_check_clean;
}

struct CheckOptions {
  std::string image;
  std::string format;
};

// Adapter until imagefmt::check_image (image_ops.cpp, not this tool's) sends
// OVAs to check_ova itself: the format decides which check runs.
[[nodiscard]] Result<imagefmt::CheckReport> check_by_format(const std::string& image, const std::string& format) {
  if (format == "ova") {
    return imagefmt::check_ova(image);
  }
  return imagefmt::check_image(image, format.empty() ? std::nullopt : std::optional<std::string>(format));
}

void run_check(cli::Context& ctx, const CheckOptions& o) {
  std::string format = o.format;
  if (format.empty()) {
    auto probed = imagefmt::probe_path(o.image);
    format = probed ? probed->format : "";
  }
  auto r = check_by_format(o.image, format);
  if (!r) {
    if (r.error().code() == Errc::not_supported) {
      fmt::print(stderr, "utsushi-img: {}\n", r.error().message());
      ctx.exit_code = k_check_unsupported;
      return;
    }
    fmt::print(stderr, "utsushi-img: error: could not check '{}': {}\n", o.image, r.error().message());
    ctx.exit_code = k_check_failed;
    return;
  }
  const auto& rep = *r;
  if (ctx.options.json) {
    nlohmann::json j = {{"type", "result"},
                        {"status", "ok"},
                        {"filename", o.image},
                        {"format", format},
                        {"check-errors", rep.check_errors},
                        {"corruptions", rep.corruptions},
                        {"leaks", rep.leaks},
                        {"image-end-offset", rep.image_end_offset},
                        {"total-clusters", rep.total_clusters},
                        {"allocated-clusters", rep.allocated_clusters},
                        {"compressed-clusters", rep.compressed_clusters},
                        {"messages", rep.messages}};
    cli::print_json_line(j.dump());
  } else {
    for (const auto& m : rep.messages) {
      fmt::print("{}\n", m);
    }
    if (rep.check_errors > 0) {
      fmt::print("\n{} internal errors have occurred during the check.\n", rep.check_errors);
    }
    if (rep.corruptions == 0 && rep.leaks == 0 && rep.check_errors == 0) {
      fmt::print("No errors were found on the image.\n");
    } else {
      if (rep.corruptions > 0) {
        fmt::print("\n{} errors were found on the image.\nData may be corrupted, or further writes to the image "
                   "may corrupt it.\n",
                   rep.corruptions);
      }
      if (rep.leaks > 0) {
        fmt::print("\n{} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to "
                   "data.\n",
                   rep.leaks);
      }
    }
    if (rep.total_clusters > 0) {
      fmt::print("{}/{} = {:.2f}% allocated, {:.2f}% compressed clusters\n", rep.allocated_clusters,
                 rep.total_clusters, 100.0 * static_cast<double>(rep.allocated_clusters) /
                                         static_cast<double>(rep.total_clusters),
                 rep.allocated_clusters ? 100.0 * static_cast<double>(rep.compressed_clusters) /
                                              static_cast<double>(rep.allocated_clusters)
                                        : 0.0);
    }
    fmt::print("Image end offset: {}\n", rep.image_end_offset);
  }
  ctx.exit_code = check_exit_code(rep);
}

}  // namespace

void setup_check(cli::Context& ctx) {
  auto opts = std::make_shared<CheckOptions>();
  auto* sub = ctx.app.add_subcommand(
      "check", "Check an image's consistency (exit 0 clean, 1 check failed, 2 corrupt, 3 leaks, 63 unsupported)");
  sub->add_option("-f,--format", opts->format, "Image format (probed when omitted)");
  sub->add_option("IMAGE", opts->image, "Image file")->required();
  sub->callback([&ctx, opts] { run_check(ctx, *opts); });
}

}  // namespace utsushi::img
