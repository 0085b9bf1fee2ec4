#pragma once
// v2p subcommands: each adds itself to the app and calls the library.
#include "utsushi/common/cli.h"

namespace utsushi::v2p_cli {

void setup_restore(cli::Context& ctx);
void setup_plan(cli::Context& ctx);
void setup_serve(cli::Context& ctx);

}  // namespace utsushi::v2p_cli
