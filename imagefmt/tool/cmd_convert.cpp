#include <fmt/core.h>

#include <string_view>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/image_ops.h"

namespace utsushi::img {
namespace {

struct ConvertOptions {
  std::string input;
  std::string output;
  std::string input_format;
  std::string output_format = "raw";
  bool compress = false;
  std::vector<std::string> format_options;
  unsigned threads = 0;
};

constexpr std::uint64_t k_max_cpus = 4096;  // as p2v --cpus

// "65536", "64k", "2M" -> bytes.
std::uint64_t parse_size(const std::string& v) {
  std::size_t used = 0;
  std::uint64_t n = 0;
  try {
    n = std::stoull(v, &used);
  } catch (const std::exception&) {
    throw cli::Failure(Error(Errc::invalid_argument, "invalid size '" + v + "'"));
  }
  std::string suffix = v.substr(used);
  int shift = 0;
  if (suffix == "k" || suffix == "K") {
    shift = 10;
  } else if (suffix == "m" || suffix == "M") {
    shift = 20;
  } else if (suffix == "g" || suffix == "G") {
    shift = 30;
  } else if (!suffix.empty()) {
    throw cli::Failure(Error(Errc::invalid_argument, "invalid size '" + v + "'"));
  }
  if (n > (UINT64_MAX >> shift)) {
    throw cli::Failure(Error(Errc::invalid_argument, "size '" + v + "' is too large"));
  }
  return n << shift;
}

[[noreturn]] void bad_option(const std::string& kv, const std::string& why) {
  throw cli::Failure(Error(Errc::invalid_argument, "-o " + kv + ": " + why));
}

bool is_number(const std::string& v) { return !v.empty() && v.find_first_not_of("0123456789") == std::string::npos; }

// One -o key: the output format it applies to, and how its value is taken.
struct FormatOption {
  std::string_view key;
  std::string_view format;
  void (*apply)(imagefmt::ConvertOptions& c, const std::string& kv, const std::string& value);
};

void apply_compression_type(imagefmt::ConvertOptions& c, const std::string& kv, const std::string& value) {
  if (value != "zstd" && value != "zlib") {
    bad_option(kv, "the compression type is zstd or zlib");
  }
  c.compression_type = value;
}

void apply_cluster_size(imagefmt::ConvertOptions& c, const std::string& kv, const std::string& value) {
  if (value.empty()) {
    bad_option(kv, "a size is needed (512 to 2M)");
  }
  c.cluster_size = parse_size(value);
}

void apply_cpus(imagefmt::ConvertOptions& c, const std::string& kv, const std::string& value) {
  std::uint64_t n = is_number(value) ? parse_size(value) : 0;
  if (n < 1 || n > k_max_cpus) {
    bad_option(kv, "the number of virtual CPUs must be a whole number from 1 to " + std::to_string(k_max_cpus));
  }
  c.cpus = static_cast<unsigned>(n);
}

void apply_memory(imagefmt::ConvertOptions& c, const std::string& kv, const std::string& value) {
  // A plain number is MiB (as in OVF); "4G", "512M" are sizes.
  std::uint64_t mib = value.empty() ? 0 : is_number(value) ? parse_size(value) : parse_size(value) >> 20;
  if (mib == 0) {
    bad_option(kv, "the memory must be at least 1 MiB (a plain number is MiB; or 512M, 4G)");
  }
  c.memory_mib = mib;
}

// Every -o key and the output formats it applies to; any other pairing is
// refused, as qemu-img refuses an option the output format does not have.
constexpr FormatOption k_format_options[] = {
    {"compression_type", "qcow2", apply_compression_type},
    {"cluster_size", "qcow2", apply_cluster_size},
    {"cpus", "ova", apply_cpus},
    {"memory", "ova", apply_memory},
};

void apply_format_option(imagefmt::ConvertOptions& c, const std::string& kv) {
  auto eq = kv.find('=');
  std::string key = kv.substr(0, eq);
  std::string value = eq == std::string::npos ? "" : kv.substr(eq + 1);
  const FormatOption* option = nullptr;
  for (const FormatOption& o : k_format_options) {
    if (o.key == key) {
      option = &o;
    }
  }
  if (option == nullptr) {
    bad_option(kv, "unknown option '" + key + "' for output format '" + c.output_format + "'");
  }
  if (option->format != c.output_format) {
    bad_option(kv, "option '" + key + "' does not apply to output format '" + c.output_format + "' (only to " +
                       std::string(option->format) + ")");
  }
  option->apply(c, kv, value);
}

imagefmt::ConvertOptions to_library(const ConvertOptions& o) {
  imagefmt::ConvertOptions c;
  if (!o.input_format.empty()) {
    c.input_format = o.input_format;
  }
  c.output_format = o.output_format;
  c.compress = o.compress;
  c.threads = o.threads;
  for (const std::string& kv : o.format_options) {
    apply_format_option(c, kv);
  }
  return c;
}

void run_convert(cli::Context& ctx, const ConvertOptions& o) {
  imagefmt::ConvertOptions c = to_library(o);
  ProgressReporter progress(choose_progress_mode(ctx.options.json, ctx.options.quiet), "convert");
  c.progress = progress.callback();
  auto r = cli::value_or_throw(imagefmt::convert_image(o.input, o.output, c));
  progress.finish();
  if (ctx.options.json) {
    nlohmann::json j = {{"type", "result"},
                        {"status", "ok"},
                        {"input", o.input},
                        {"output", o.output},
                        {"output-format", o.output_format},
                        {"virtual-size", r.virtual_size},
                        {"bytes-read", r.bytes_read},
                        {"bytes-written", r.bytes_written},
                        {"bytes-zero", r.bytes_zero},
                        {"output-size", r.output_file_size},
                        {"seconds", r.seconds}};
    cli::print_json_line(j.dump());
  } else if (!ctx.options.quiet) {
    fmt::print(stderr, "utsushi-img: converted {} to {} ({}): read {}, wrote {}, skipped {} of zeros in {:.2f} s\n",
               o.input, o.output, o.output_format, format_bytes(r.bytes_read), format_bytes(r.bytes_written),
               format_bytes(r.bytes_zero), r.seconds);
  }
}

}  // namespace

void setup_convert(cli::Context& ctx) {
  auto opts = std::make_shared<ConvertOptions>();
  auto* sub = ctx.app.add_subcommand("convert", "Convert an image to another format, skipping zeros");
  sub->add_option("-f,--source-format", opts->input_format, "Input format (probed when omitted)");
  sub->add_option("-O,--output-format", opts->output_format, "Output format")->check(CLI::IsMember({"raw", "qcow2", "vmdk", "ova"}));
  sub->add_flag("-c,--compress", opts->compress, "Compress the output (formats that support it)");
  // One argument per -o (split at commas), so -o never takes INPUT or OUTPUT.
  sub->add_option("-o,--options", opts->format_options,
                  "Format options, comma-separated, repeatable: compression_type=zstd|zlib, cluster_size=SIZE "
                  "(qcow2); cpus=N, memory=SIZE (ova). Options of another format are refused")
      ->delimiter(',')
      ->allow_extra_args(false);
  sub->add_option("-m,--threads", opts->threads, "Worker threads (default: one per core)");
  sub->add_option("INPUT", opts->input, "Input image or block device")->required();
  sub->add_option("OUTPUT", opts->output, "Output file (written atomically)")->required();
  sub->callback([&ctx, opts] { run_convert(ctx, *opts); });
}

}  // namespace utsushi::img
