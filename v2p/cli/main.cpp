// v2p: restore a guest image onto a bare-metal disk and make it boot on hardware.
// CLI wiring only: each command's behaviour lives in the utsushi_v2p library.
#include "commands.h"

int main(int argc, char** argv) {
  return utsushi::cli::run_program(
      "v2p", "Restore a guest image onto a bare-metal disk of any size and make it boot on the hardware", argc, argv,
      [](utsushi::cli::Context& ctx) {
        ctx.app.require_subcommand(1);
        utsushi::v2p_cli::setup_restore(ctx);
        utsushi::v2p_cli::setup_plan(ctx);
        utsushi::v2p_cli::setup_serve(ctx);
      });
}
