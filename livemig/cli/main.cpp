// livemig: live-migrate running QEMU guests through a compact memory-delta protocol.
// CLI wiring only: behaviour lives in the utsushi_livemig library.
#include "commands.h"

int main(int argc, char** argv) {
  return utsushi::cli::run_program(
      "livemig", "Live-migrate running QEMU guests through a compact memory-delta protocol", argc, argv,
      [](utsushi::cli::Context& ctx) {
        ctx.app.require_subcommand(1);
        utsushi::livemig_cli::setup_send(ctx);
        utsushi::livemig_cli::setup_receive(ctx);
        utsushi::livemig_cli::setup_migrate(ctx);
        utsushi::livemig_cli::setup_evacuate(ctx);
      });
}
