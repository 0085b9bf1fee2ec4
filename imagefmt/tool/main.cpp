// utsushi-img: inspect and convert guest images (options follow qemu-img's).
#include "commands.h"

int main(int argc, char** argv) {
  return utsushi::cli::run_program("utsushi-img", "Inspect and convert guest disk images", argc, argv,
                                   [](utsushi::cli::Context& ctx) {
                                     ctx.app.require_subcommand(1);
                                     utsushi::img::setup_info(ctx);
                                     utsushi::img::setup_convert(ctx);
                                     utsushi::img::setup_map(ctx);
                                     utsushi::img::setup_check(ctx);
                                   });
}
