#include "commands.h"
#include "utsushi/livemig/handshake.h"

namespace utsushi::livemig_cli {

namespace {
struct SendCmd {
  std::string qmp;
  std::string to;
  std::string token_file;
  SendFlags flags;
};
}  // namespace

void setup_send(cli::Context& ctx) {
  auto o = std::make_shared<SendCmd>();
  auto* sub = ctx.app.add_subcommand("send", "Migrate the guest behind a QMP socket to a `livemig receive`");
  sub->add_option("--qmp", o->qmp, "QMP socket of the source QEMU")->required();
  sub->add_option("--to", o->to, "HOST:PORT of the receiver")->required();
  sub->add_option("--token-file", o->token_file, "File holding the shared token (>= 16 bytes)")->required();
  add_send_flags(*sub, o->flags);
  sub->callback([&ctx, o] {
    livemig::SendRemoteOptions opts;
    opts.qmp_path = o->qmp;
    opts.to = o->to;
    opts.token = cli::value_or_throw(livemig::read_token_file(o->token_file));
    opts.bandwidth = bandwidth_of(o->flags);
    opts.send = to_send_options(o->flags);
    finish(ctx, livemig::send_remote(opts));
  });
}

}  // namespace utsushi::livemig_cli
