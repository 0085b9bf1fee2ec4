#pragma once
// p2v subcommands: each adds itself to the app and calls the library.
#include "utsushi/common/cli.h"

namespace utsushi::p2v_cli {

void setup_capture(cli::Context& ctx);
void setup_serve(cli::Context& ctx);

}  // namespace utsushi::p2v_cli
