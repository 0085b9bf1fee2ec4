#include "utsushi/virt/accel_option.h"

#include "utsushi/common/cli.h"

namespace utsushi::virt::cli {

CLI::Option* add_accel_option(CLI::App& app, std::optional<Accel>& accel) {
  return app
      .add_option_function<std::string>(
          "--accel", [&accel](const std::string& name) { accel = utsushi::cli::value_or_throw(parse_accel(name)); },
          "QEMU accelerator: kvm or tcg (default: probe whether KVM runs guests here)")
      ->check(CLI::IsMember({"kvm", "tcg"}));
}

}  // namespace utsushi::virt::cli
