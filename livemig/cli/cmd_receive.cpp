#include <fmt/core.h>

#include "commands.h"
#include "utsushi/common/log.h"
#include "utsushi/livemig/handshake.h"

namespace utsushi::livemig_cli {

namespace {
struct ReceiveCmd {
  std::string listen;
  std::string qmp;
  std::string token_file;
  double accept_timeout_s = 600;
  std::string port_file;
  bool hold = false;
  double go_timeout_s = 30;
};
}  // namespace

void setup_receive(cli::Context& ctx) {
  auto o = std::make_shared<ReceiveCmd>();
  auto* sub = ctx.app.add_subcommand("receive", "Receive a migration into a QEMU started with -incoming defer");
  sub->add_option("--listen", o->listen, "ADDR:PORT to listen on (port 0: any free port)")->required();
  sub->add_option("--qmp", o->qmp, "QMP socket of the destination QEMU")->required();
  sub->add_option("--token-file", o->token_file, "File holding the shared token (>= 16 bytes)")->required();
  sub->add_option("--accept-timeout", o->accept_timeout_s, "Give up when no sender authenticated within SECONDS");
  sub->add_option("--port-file", o->port_file, "Write the listening port to FILE once listening");
  add_hold_flags(*sub, o->hold, o->go_timeout_s);
  sub->callback([&ctx, o] {
    livemig::ReceiveRemoteOptions opts;
    opts.qmp_path = o->qmp;
    opts.listen = o->listen;
    opts.token = cli::value_or_throw(livemig::read_token_file(o->token_file));
    opts.accept_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o->accept_timeout_s * 1000));
    opts.receive.hold = o->hold;
    opts.receive.go_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o->go_timeout_s * 1000));
    std::string port_file = o->port_file;
    opts.on_listening = [port_file](std::uint16_t port) {
      if (!port_file.empty()) {
        std::string tmp = port_file + ".tmp";
        if (FILE* f = std::fopen(tmp.c_str(), "w")) {
          std::fprintf(f, "%u\n", port);
          std::fclose(f);
          std::rename(tmp.c_str(), port_file.c_str());
        }
      }
    };
    finish(ctx, livemig::receive_remote(opts));
  });
}

}  // namespace utsushi::livemig_cli
