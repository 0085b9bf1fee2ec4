// clone: deploy customised linked or full clones of a golden guest into libvirt.
// CLI wiring only: each command's behaviour lives in the utsushi_clone library.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"

namespace utsushi::clone_cli {

void print_event(const cli::Context& ctx, const std::string& subject, const std::string& what) {
  if (ctx.options.json) {
    cli::print_json_line(nlohmann::json({{"type", "progress"}, {"subject", subject}, {"event", what}}).dump());
  } else if (!ctx.options.quiet) {
    fmt::print(stderr, "clone: {}{}{}\n", subject, subject.empty() ? "" : ": ", what);
  }
}

}  // namespace utsushi::clone_cli

int main(int argc, char** argv) {
  return utsushi::cli::run_program(
      "clone", "Deploy customised linked or full clones of a golden guest into libvirt", argc, argv,
      [](utsushi::cli::Context& ctx) {
        ctx.app.require_subcommand(1);
        utsushi::clone_cli::setup_create(ctx);
        utsushi::clone_cli::setup_sysprep(ctx);
        utsushi::clone_cli::setup_destroy(ctx);
      });
}
