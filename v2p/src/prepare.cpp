#include "utsushi/v2p/prepare.h"

#include <fmt/core.h>

#include "utsushi/common/log.h"
#include "utsushi/guest/inspect.h"

namespace utsushi::v2p {

std::string_view boot_choice_name(BootChoice b) noexcept {
  switch (b) {
    case BootChoice::automatic: return "auto";
    case BootChoice::bios: return "bios";
    case BootChoice::uefi: return "uefi";
    case BootChoice::none: return "none";
  }
  return "?";
}

Result<BootChoice> parse_boot(std::string_view text) {
  for (BootChoice b : {BootChoice::automatic, BootChoice::bios, BootChoice::uefi, BootChoice::none}) {
    if (text == boot_choice_name(b)) {
      return b;
    }
  }
  return fail(Errc::invalid_argument, fmt::format("--boot takes auto, bios, uefi or none, not '{}'", text));
}

Result<guest::Report> prepare_system(const guest::DiskSpec& disk, const PrepareOptions& options, guest::Mode mode) {
  guest::SessionOptions so;
  so.identifier = "v2p-prepare";
  auto session = UTSUSHI_TRY(guest::Session::create(so));
  UTSUSHI_TRY(session.add_disk(disk));
  auto report = [&options](const std::string& line) {
    if (options.report) {
      options.report("boot preparation: " + line);
    }
  };
  report("starting the libguestfs appliance");
  UTSUSHI_TRY(session.launch());
  guest::GuestOs os = UTSUSHI_TRY(guest::inspect(session));
  const auto mount_mode = mode == guest::Mode::apply ? guest::MountMode::read_write : guest::MountMode::read_only;
  UTSUSHI_TRY(guest::mount_guest(session, os, mount_mode));
  UTSUSHI_TRY(guest::probe_guest(session, os));
  guest::OperationList ops = UTSUSHI_TRY(preparation_operations(options, os));
  std::vector<const guest::Operation*> list;
  for (const auto& op : ops) {
    list.push_back(op.get());
  }
  guest::Report done = guest::run_operations(session, os, list, mode, [&](const guest::Operation& op) {
    report(fmt::format("{}: {}", op.name(), op.description()));
  });
  UTSUSHI_TRY(session.umount_all());
  UTSUSHI_TRY(session.shutdown());
  return done;
}

}  // namespace utsushi::v2p
