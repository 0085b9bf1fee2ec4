// livemig: Live-migrate running QEMU/KVM guests through a compact memory-delta protocol.
// CLI wiring only: each command's behaviour lives in a library.
#include "utsushi/common/cli.h"

int main(int argc, char** argv) {
  return utsushi::cli::run_program("livemig", "Live-migrate running QEMU/KVM guests through a compact memory-delta protocol", argc, argv, [](utsushi::cli::Context& ctx) {
    ctx.app.require_subcommand(0, 1);
    ctx.app.final_callback([&ctx] {
      if (ctx.app.get_subcommands().empty()) {
        throw utsushi::cli::Failure(utsushi::Error(utsushi::Errc::invalid_argument, "no command given (see 'livemig --help')"));
      }
    });
  });
}
