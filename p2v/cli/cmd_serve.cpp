// p2v serve --listen ADDR:PORT --token-file FILE --output-dir DIR [--once] [--port-file FILE] [--sessions N]
//           [--convert [convert options]]
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <mutex>

#include "commands.h"
#include "utsushi/common/auth.h"
#include "utsushi/p2v/server.h"

namespace utsushi::p2v_cli {
namespace {

struct ServeOptions {
  std::string listen;
  std::string token_file;
  std::string output_dir;
  bool once = false;
  unsigned threads = 0;
  unsigned sessions = 4;
  std::string port_file;
  bool convert = false;
  ConvertCliOptions conversion;  // with --convert
};

void run_serve(cli::Context& ctx, const ServeOptions& o) {
  p2v::ServeOptions s;
  s.listen = o.listen;
  s.token = cli::value_or_throw(auth::read_token_file(o.token_file));
  s.output_dir = o.output_dir;
  s.once = o.once;
  s.threads = o.threads;
  s.sessions = o.sessions;
  s.on_listening = [port_file = o.port_file](std::uint16_t port) { cli::write_port_file(port_file, port); };
  s.report = cli::event_reporter(ctx, "p2v");
  if (o.convert) {
    // The end of a completed capture: its disks are converted as one machine,
    // beside them in the client's directory, and its domain defined, as
    // `p2v convert` does. One conversion at a time: each launches an
    // appliance, and their reports must not interleave.
    auto converting = std::make_shared<std::mutex>();
    s.on_complete = [&ctx, &o, converting](const std::vector<std::string>& images) -> Result<void> {
      std::lock_guard lock(*converting);
      ConvertCliOptions c = o.conversion;
      c.output_dir = std::filesystem::path(images.front()).parent_path().string();
      try {
        convert_images(ctx, c, images);
      } catch (const cli::Failure& e) {
        return std::unexpected(e.error());
      }
      return {};
    };
  }
  cli::value_or_throw(p2v::serve(s));
  if (ctx.options.json) {
    cli::print_json_line(nlohmann::json({{"type", "result"}, {"status", "ok"}}).dump());
  }
}

}  // namespace

void setup_serve(cli::Context& ctx) {
  auto o = std::make_shared<ServeOptions>();
  auto* sub = ctx.app.add_subcommand("serve", "Receive network captures and write their images");
  sub->add_option("--listen", o->listen, "Address to listen on, ADDR:PORT")->required();
  sub->add_option("--token-file", o->token_file, "File holding the token clients must prove they know")->required();
  sub->add_option("--output-dir", o->output_dir, "Directory the images are written to")->required();
  sub->add_flag("--once", o->once, "Exit after the first session that completes");
  sub->add_option("-m,--threads", o->threads, "Worker threads for the final image (default: one per core)");
  sub->add_option("--sessions", o->sessions, "Captures received at once (more clients are told to retry)")
      ->check(CLI::Range(1, 64));
  sub->add_option("--port-file", o->port_file, "Write the listening port to FILE once listening (useful with port 0)");
  auto* convert = sub->add_flag("--convert", o->convert,
                                 "Convert each completed capture into a guest and define its domain (as p2v convert)");
  add_convert_options(*sub, o->conversion);
  for (CLI::Option* opt : sub->get_options()) {
    if (opt != convert && opt->get_group() == k_convert_group) {
      opt->needs(convert);  // a convert option without --convert is a usage error, not ignored
    }
  }
  sub->callback([&ctx, o] { run_serve(ctx, *o); });
}

}  // namespace utsushi::p2v_cli
