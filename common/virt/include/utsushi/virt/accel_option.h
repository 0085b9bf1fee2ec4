#pragma once
// The CLI side of the accelerator choice (accel.h), for programs that start
// QEMU guests or libguestfs appliances. Like common/cli.h it is for the CLI
// edge only: it throws cli::Failure; library code never includes it.

#include <CLI/CLI.hpp>

#include <optional>

#include "utsushi/virt/accel.h"

namespace utsushi::virt::cli {

// Adds "--accel kvm|tcg" to `app`; when given it overrides UTSUSHI_ACCEL and
// the probe (pass the value to choose_accel). `accel` must outlive parsing.
CLI::Option* add_accel_option(CLI::App& app, std::optional<Accel>& accel);

}  // namespace utsushi::virt::cli
