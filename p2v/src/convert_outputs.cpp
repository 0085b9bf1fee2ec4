// p2v convert: the converted images (pending until committed), the profile
// facts, names and the JSON result.
#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/log.h"
#include "utsushi/p2v/convert.h"

namespace utsushi::p2v {

namespace fs = std::filesystem;

std::string_view name_of(DiskBus b) noexcept {
  switch (b) {
    case DiskBus::virtio: return "virtio";
    case DiskBus::scsi: return "scsi";
    case DiskBus::sata: return "sata";
  }
  return "virtio";
}

std::string_view name_of(NicModel m) noexcept { return m == NicModel::e1000e ? "e1000e" : "virtio"; }

Result<DiskBus> parse_disk_bus(std::string_view s) {
  for (DiskBus b : {DiskBus::virtio, DiskBus::scsi, DiskBus::sata}) {
    if (name_of(b) == s) {
      return b;
    }
  }
  return fail(Errc::invalid_argument, fmt::format("unknown disk bus '{}' (virtio, scsi, sata)", s));
}

Result<NicModel> parse_nic_model(std::string_view s) {
  for (NicModel m : {NicModel::virtio, NicModel::e1000e}) {
    if (name_of(m) == s) {
      return m;
    }
  }
  return fail(Errc::invalid_argument, fmt::format("unknown NIC model '{}' (virtio, e1000e)", s));
}

Result<ProfileFacts> read_profile_facts(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return fail(Errc::not_found, "cannot read the hardware profile " + path);
  }
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("type", "") != "utsushi-hardware-profile") {
    return fail(Errc::invalid_argument, path + " is not a utsushi hardware profile");
  }
  ProfileFacts f;
  try {
    f.hostname = j.value("hostname", "");
    if (j.contains("cpus") && j["cpus"].is_object()) {
      f.cpus = j["cpus"].value("count", 0U);
    }
    if (j.contains("memory") && j["memory"].is_object()) {
      f.memory_bytes = j["memory"].value("bytes", std::uint64_t{0});
    }
    if (j.contains("nics") && j["nics"].is_array()) {
      for (const auto& n : j["nics"]) {
        f.nics.push_back({n.value("name", ""), n.value("mac", "")});
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::invalid_argument, path + ": " + e.what());
  }
  if (f.cpus && *f.cpus == 0) {
    f.cpus.reset();
  }
  if (f.memory_bytes && *f.memory_bytes == 0) {
    f.memory_bytes.reset();
  }
  return f;
}

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
          {"bus", std::string(name_of(c.bus))},
          {"nic-model", std::string(name_of(c.nic))},
          {"cpus", c.cpus},
          {"memory-bytes", c.memory_bytes},
          {"disks", disks},
          {"nics", nics},
          {"report", guest::to_json(c.report)},
          {"seconds", c.seconds}};
}

}  // namespace utsushi::p2v
