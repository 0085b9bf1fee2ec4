// v2p: Restore a guest image onto a bare-metal disk and make it boot on hardware.
// CLI wiring only: each command's behaviour lives in a library.
#include "utsushi/common/cli.h"

int main(int argc, char** argv) {
  return utsushi::cli::run_program("v2p", "Restore a guest image onto a bare-metal disk and make it boot on hardware", argc, argv, [](utsushi::cli::Context& ctx) {
    ctx.app.require_subcommand(0, 1);
    ctx.app.final_callback([&ctx] {
      if (ctx.app.get_subcommands().empty()) {
        throw utsushi::cli::Failure(utsushi::Error(utsushi::Errc::invalid_argument, "no command given (see 'v2p --help')"));
      }
    });
  });
}
