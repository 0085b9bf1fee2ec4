// p2v capture SOURCE... -o OUTPUT [--format qcow2|raw] [-c] [--verify]
//                        [--to HOST:PORT --token-file FILE]
#include <fmt/core.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "utsushi/common/auth.h"
#include "utsushi/common/log.h"
#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/raw.h"
#include "utsushi/p2v/capture.h"
#include "utsushi/p2v/client.h"
#include "utsushi/p2v/hw_profile.h"

namespace utsushi::p2v_cli {
namespace {

namespace fs = std::filesystem;

struct CaptureOptions {
  std::vector<std::string> sources;
  std::string output;
  std::string format = "qcow2";
  bool compress = false;
  bool verify = false;
  unsigned threads = 0;
  std::string to;
  std::string token_file;
  std::string client_name;
  bool no_profile = false;
  unsigned cpus = 2;
  std::uint64_t memory_mib = 2048;
};

// The image name for a source: "/dev/sda" -> "sda", "disk.raw" -> "disk".
std::string image_stem(const std::string& source) {
  fs::path p(source);
  std::string stem = p.extension() == ".raw" || p.extension() == ".img" ? p.stem().string() : p.filename().string();
  return stem.empty() ? "disk" : stem;
}

// One output name per source, unique within the run.
std::vector<std::string> image_names(const std::vector<std::string>& sources, p2v::OutputFormat f) {
  std::vector<std::string> names;
  std::map<std::string, int> seen;
  for (const std::string& s : sources) {
    std::string stem = image_stem(s);
    int n = seen[stem]++;
    if (n > 0) {
      stem += "-" + std::to_string(n);
    }
    names.push_back(stem + std::string(p2v::output_extension(f)));
  }
  return names;
}

nlohmann::json result_json(const p2v::CaptureResult& r, p2v::OutputFormat f) {
  nlohmann::json j = {{"source", r.plan.source},
                      {"output", r.output},
                      {"format", std::string(p2v::output_format_name(f))},
                      {"virtual-size", r.plan.size},
                      {"copied-bytes", r.plan.used_bytes()},
                      {"bytes-read", r.stats.bytes_read},
                      {"bytes-written", r.stats.bytes_written},
                      {"output-size", r.stats.file_size},
                      {"seconds", r.seconds},
                      {"plan", disk::plan_to_json(r.plan)}};
  if (r.verify) {
    j["verified-bytes"] = r.verify->bytes;
  }
  return j;
}

void print_summary(const p2v::CaptureResult& r) {
  fmt::print(stderr, "p2v: {} -> {}: copied {} of {} ({} written, file {}) in {:.2f} s{}\n", r.plan.source, r.output,
             format_bytes(r.plan.used_bytes()), format_bytes(r.plan.size), format_bytes(r.stats.bytes_written),
             format_bytes(r.stats.file_size), r.seconds, r.verify ? ", verified" : "");
  for (const disk::VolumeMap& v : r.plan.volumes) {
    fmt::print(stderr, "p2v:   {:<4} {:<12} {:>10} of {:>10}{}\n", v.name, v.filesystem, format_bytes(v.used.total()),
               format_bytes(v.size), v.full_copy ? " (full copy)" : "");
  }
}

void run_capture(cli::Context& ctx, const CaptureOptions& o) {
  p2v::OutputFormat f = cli::value_or_throw(p2v::parse_output_format(o.format));
  if (o.compress && f != p2v::OutputFormat::qcow2) {
    throw cli::Failure(Error(Errc::invalid_argument, "-c needs --format qcow2"));
  }
  std::vector<std::string> names = image_names(o.sources, f);
  if (!o.to.empty()) {
    if (o.token_file.empty()) {
      throw cli::Failure(Error(Errc::invalid_argument, "--to needs --token-file"));
    }
    if (!o.output.empty()) {
      // With --to, -o names the image on the server (DIR/CLIENT/OUTPUT).
      if (o.sources.size() > 1) {
        throw cli::Failure(Error(Errc::invalid_argument,
                                 "with --to, -o names one image: capture one source per command, or omit -o (the "
                                 "images are then named after their sources)"));
      }
      names[0] = o.output;
    }
    if (o.verify) {
      throw cli::Failure(Error(Errc::invalid_argument,
                               "--verify applies to local captures; with --to every chunk is checked by its "
                               "XXH64 checksum on arrival and re-sent when it differs"));
    }
    p2v::ClientOptions c;
    c.address = o.to;
    c.token = cli::value_or_throw(auth::read_token_file(o.token_file));
    c.format = f;
    c.compress_image = o.compress;
    c.verify = o.verify;
    c.threads = o.threads;
    c.client_name = o.client_name;
    ProgressReporter progress(choose_progress_mode(ctx.options.json, ctx.options.quiet), "send");
    c.progress = progress.callback();
    for (std::size_t i = 0; i < o.sources.size(); ++i) {
      auto r = cli::value_or_throw(p2v::send_disk(o.sources[i], names[i], c));
      progress.finish();
      if (ctx.options.json) {
        cli::print_json_line(nlohmann::json({{"type", "result"},
                                             {"status", "ok"},
                                             {"source", o.sources[i]},
                                             {"remote-image", r.remote_path},
                                             {"copied-bytes", r.used_bytes},
                                             {"chunks-sent", r.chunks_sent},
                                             {"chunks-skipped", r.chunks_skipped},
                                             {"bytes-on-wire", r.wire_bytes},
                                             {"resent", r.resent},
                                             {"seconds", r.seconds}})
                                 .dump());
      } else if (!ctx.options.quiet) {
        fmt::print(stderr, "p2v: {} -> {}:{}: sent {} chunks ({} already there), {} on the wire in {:.2f} s\n",
                   o.sources[i], o.to, r.remote_path, r.chunks_sent, r.chunks_skipped, format_bytes(r.wire_bytes),
                   r.seconds);
      }
    }
    return;
  }
  if (o.output.empty()) {
    throw cli::Failure(Error(Errc::invalid_argument, "an output is required: -o OUTPUT (or --to HOST:PORT)"));
  }
  std::vector<std::string> outputs;
  std::string profile_path;
  if (o.sources.size() > 1 || fs::is_directory(o.output)) {
    std::error_code ec;
    fs::create_directories(o.output, ec);
    if (ec) {
      throw cli::Failure(Error(Errc::io_error, "cannot create directory '" + o.output + "': " + ec.message()));
    }
    for (const std::string& n : names) {
      outputs.push_back((fs::path(o.output) / n).string());
    }
    profile_path = (fs::path(o.output) / "hardware.json").string();
  } else {
    outputs.push_back(o.output);
    // A block device written in place has no directory of its own for the profile.
    profile_path = imagefmt::is_block_device(o.output) ? std::string() : o.output + ".hardware.json";
  }
  const bool write_profile = !o.no_profile && !profile_path.empty();

  std::vector<p2v::CaptureResult> results;
  for (std::size_t i = 0; i < o.sources.size(); ++i) {
    p2v::CaptureOptions c;
    c.image.format = f;
    c.image.compress = o.compress;
    c.image.threads = o.threads;
    c.image.cpus = o.cpus;
    c.image.memory_mib = o.memory_mib;
    c.verify = o.verify;
    ProgressReporter progress(choose_progress_mode(ctx.options.json, ctx.options.quiet), "capture");
    c.image.progress = progress.callback();
    ProgressReporter vprogress(choose_progress_mode(ctx.options.json, ctx.options.quiet), "verify");
    c.verify_progress = vprogress.callback();
    auto r = cli::value_or_throw(p2v::capture_disk(o.sources[i], outputs[i], c));
    progress.finish();
    vprogress.finish();
    if (ctx.options.json) {
      nlohmann::json j = result_json(r, f);
      j["type"] = "disk";
      cli::print_json_line(j.dump());
    } else if (!ctx.options.quiet) {
      print_summary(r);
    }
    results.push_back(std::move(r));
  }
  if (write_profile) {
    std::vector<disk::DiskPlan> plans;
    std::vector<std::string> images;
    for (const auto& r : results) {
      plans.push_back(r.plan);
      images.push_back(r.output);
    }
    auto profile = p2v::hardware_profile(plans, images);
    cli::value_or_throw(p2v::write_profile(profile, profile_path));
  }
  if (ctx.options.json) {
    nlohmann::json disks = nlohmann::json::array();
    for (const auto& r : results) {
      disks.push_back(result_json(r, f));
    }
    nlohmann::json j = {{"type", "result"}, {"status", "ok"}, {"disks", disks}};
    if (write_profile) {
      j["hardware-profile"] = profile_path;
    }
    cli::print_json_line(j.dump());
  }
}

}  // namespace

void setup_capture(cli::Context& ctx) {
  auto o = std::make_shared<CaptureOptions>();
  auto* sub = ctx.app.add_subcommand("capture", "Capture disks into guest images, copying only used blocks");
  sub->add_option("SOURCE", o->sources, "Block devices or raw disk images (opened read-only)")->required();
  sub->add_option("-o,--output", o->output,
                  "Output image (one source; a block device is written in place with --format raw) or directory "
                  "(several sources: one image each)");
  sub->add_option("--format", o->format, "Image format")->check(CLI::IsMember({"qcow2", "raw", "ova"}));
  sub->add_flag("-c,--compress", o->compress, "zstd-compressed qcow2 clusters");
  sub->add_flag("--verify", o->verify, "Re-read every used block and compare it with the image");
  sub->add_option("-m,--threads", o->threads, "Worker threads (default: one per core, at least 4)");
  sub->add_option("--to", o->to, "Stream to a 'p2v serve' at HOST:PORT instead of writing locally");
  sub->add_option("--token-file", o->token_file, "File holding the token shared with the server (with --to)");
  sub->add_option("--name", o->client_name,
                  "With --to: the name the server files this host's images under (default: the host name)");
  sub->add_flag("--no-profile", o->no_profile, "Do not write the hardware profile beside the images");
  sub->add_option("--cpus", o->cpus, "Virtual CPUs stated in an OVA's OVF (--format ova)")->check(CLI::Range(1, 4096));
  sub->add_option("--memory", o->memory_mib, "Memory in MiB stated in an OVA's OVF (--format ova)")
      ->check(CLI::Range(16, 1 << 24));
  sub->callback([&ctx, o] { run_capture(ctx, *o); });
}

}  // namespace utsushi::p2v_cli
