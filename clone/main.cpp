// clone: Deploy customised linked or full clones of a golden guest image.
// CLI wiring only: each command's behaviour lives in a library.
#include "utsushi/common/cli.h"

int main(int argc, char** argv) {
  return utsushi::cli::run_program("clone", "Deploy customised linked or full clones of a golden guest image", argc, argv, [](utsushi::cli::Context& ctx) {
    ctx.app.require_subcommand(0, 1);
    ctx.app.final_callback([&ctx] {
      if (ctx.app.get_subcommands().empty()) {
        throw utsushi::cli::Failure(utsushi::Error(utsushi::Errc::invalid_argument, "no command given (see 'clone --help')"));
      }
    });
  });
}
