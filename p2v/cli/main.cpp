// p2v: capture a physical machine's disks into guest images for KVM.
// CLI wiring only: each command's behaviour lives in the utsushi_p2v library.
#include "commands.h"

int main(int argc, char** argv) {
  return utsushi::cli::run_program(
      "p2v", "Capture a physical machine's disks into guest images and make them boot under KVM", argc, argv,
      [](utsushi::cli::Context& ctx) {
        ctx.app.require_subcommand(1);
        utsushi::p2v_cli::setup_capture(ctx);
        utsushi::p2v_cli::setup_serve(ctx);
        utsushi::p2v_cli::setup_convert(ctx);
      });
}
