#pragma once
// p2v subcommands: each adds itself to the app and calls the library.
#include <optional>
#include <string>
#include <vector>

#include "utsushi/common/cli.h"
#include "utsushi/virt/accel.h"

namespace utsushi::p2v_cli {

void setup_capture(cli::Context& ctx);
void setup_serve(cli::Context& ctx);
void setup_convert(cli::Context& ctx);

// p2v convert's options (also offered by serve --convert).
struct ConvertCliOptions {
  std::string profile;
  std::string name;
  std::string output_dir;
  bool in_place = false;
  bool copy = false;
  std::string bus = "virtio";
  std::string nic = "virtio";
  std::string network;
  std::string bridge;
  std::string firmware = "auto";
  std::string connect = "qemu:///system";
  std::string connect_given;  // --connect as given ("" when not)
  std::optional<virt::Accel> accel;
  bool replace = false;
  bool start = false;
  bool no_define = false;
  bool dry_run = false;
  unsigned threads = 0;
};

// The options a conversion takes after a capture (serve --convert shares them),
// in the help group k_convert_group.
inline constexpr const char* k_convert_group = "Conversion";
void add_convert_options(CLI::App& sub, ConvertCliOptions& o);
// Converts `images` (one machine) and defines its domain; throws cli::Failure.
void convert_images(cli::Context& ctx, const ConvertCliOptions& o, const std::vector<std::string>& images);

}  // namespace utsushi::p2v_cli
