// v2p serve IMAGE --listen ADDR:PORT --token-file FILE [--port-file FILE] [--sessions N] [--format F]
#include "commands.h"
#include "utsushi/common/auth.h"
#include "utsushi/v2p/remote_image.h"

namespace utsushi::v2p_cli {
namespace {

struct ServeOptions {
  std::string image;
  std::string listen;
  std::string token_file;
  std::string port_file;
  std::string format;
  unsigned sessions = 16;
};

void run_serve(cli::Context& ctx, const ServeOptions& o) {
  v2p::ServeImageOptions s;
  s.image = o.image;
  if (!o.format.empty()) {
    s.format = o.format;
  }
  s.listen = o.listen;
  s.token = cli::value_or_throw(auth::read_token_file(o.token_file));
  s.sessions = o.sessions;
  s.on_listening = [port_file = o.port_file](std::uint16_t port) { cli::write_port_file(port_file, port); };
  s.report = cli::event_reporter(ctx, "v2p");
  cli::value_or_throw(v2p::serve_image(s));
}

}  // namespace

void setup_serve(cli::Context& ctx) {
  auto o = std::make_shared<ServeOptions>();
  auto* sub = ctx.app.add_subcommand("serve", "Serve a guest image to `v2p restore --from` on other hosts");
  sub->add_option("IMAGE", o->image, "Guest image: qcow2 (with its backing chain), raw, VMDK or OVA")->required();
  sub->add_option("--listen", o->listen, "Address to listen on, ADDR:PORT")->required();
  sub->add_option("--token-file", o->token_file, "File holding the token clients must prove they know")->required();
  sub->add_option("--port-file", o->port_file, "Write the listening port to FILE once listening (useful with port 0)");
  sub->add_option("--sessions", o->sessions, "Links served at once (each restoring client opens one per thread)")
      ->check(CLI::Range(1, 256));
  sub->add_option("--format", o->format, "Image format (probed when not given)");
  sub->callback([&ctx, o] { run_serve(ctx, *o); });
}

}  // namespace utsushi::v2p_cli
