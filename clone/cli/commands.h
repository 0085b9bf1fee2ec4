#pragma once
// clone subcommands: each adds itself to the app and calls the library.
#include "utsushi/common/cli.h"

namespace utsushi::clone_cli {

void setup_create(cli::Context& ctx);
void setup_sysprep(cli::Context& ctx);
void setup_destroy(cli::Context& ctx);

// Progress lines: on stderr unless quiet, as {"type":"progress",...} JSON
// lines on stdout with --json.
void print_event(const cli::Context& ctx, const std::string& subject, const std::string& what);

}  // namespace utsushi::clone_cli
