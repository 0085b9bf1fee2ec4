#pragma once
// utsushi-img subcommands: each adds itself to the app and calls the library.
#include "utsushi/common/cli.h"

namespace utsushi::img {

void setup_info(cli::Context& ctx);
void setup_convert(cli::Context& ctx);
void setup_map(cli::Context& ctx);
void setup_check(cli::Context& ctx);

}  // namespace utsushi::img
