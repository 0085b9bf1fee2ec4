// p2v convert: the converted images (pending until committed) and the JSON result.
#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/log.h"
#include "utsushi/p2v/convert.h"

namespace utsushi::p2v {

namespace fs = std::filesystem;

Conversion::~Conversion() {
  if (committed) {
    return;
  }
  for (const Pending& p : pending) {
    std::error_code ec;
    fs::remove(p.temp, ec);
  }
}

Result<void> Conversion::commit() {
  if (committed) {
    return {};
  }
  for (const Pending& p : pending) {
    std::error_code ec;
    if (!replace && fs::exists(p.final_path, ec)) {
      return fail(Errc::failed_precondition, p.final_path + " exists (give --replace to overwrite it)");
    }
  }
  for (const Pending& p : pending) {
    UTSUSHI_TRY(commit_rename(p.temp, p.final_path));
  }
  committed = true;
  return {};
}

void Conversion::discard() noexcept {
  for (const Pending& p : pending) {
    std::error_code ec;
    fs::remove(committed ? p.final_path : p.temp, ec);
  }
  pending.clear();
}

nlohmann::json to_json(const Conversion& c) {
  nlohmann::json disks = nlohmann::json::array();
  for (const ConvertedDisk& d : c.disks) {
    disks.push_back({{"source", d.source}, {"path", d.path}, {"format", d.format}});
  }
  nlohmann::json nics = nlohmann::json::array();
  for (const VmNic& n : c.nics) {
    nics.push_back({{"mac", n.mac}, {"guest-name", n.guest_name}});
  }
  return {{"name", c.name},
          {"os", guest::to_json(c.os)},
          {"firmware", std::string(guest::firmware_name(c.firmware))},
          {"bus", std::string(virt::name_of(c.bus))},
          {"nic-model", std::string(virt::name_of(c.nic))},
          {"disks", disks},
          {"nics", nics},
          {"report", guest::to_json(c.report)},
          {"seconds", c.seconds}};
}

}  // namespace utsushi::p2v
