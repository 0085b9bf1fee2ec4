#include "utsushi/p2v/hw_profile.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/fd.h"

namespace utsushi::p2v {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

nlohmann::json cpu_info() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model, vendor;
  std::set<std::string> flags;
  int logical = 0;
  std::set<std::pair<std::string, std::string>> cores;
  std::string phys, core;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "processor") {
      ++logical;
    } else if (key == "model name" && model.empty()) {
      model = value;
    } else if (key == "vendor_id" && vendor.empty()) {
      vendor = value;
    } else if (key == "physical id") {
      phys = value;
    } else if (key == "core id") {
      cores.insert({phys, value});
    } else if (key == "flags" && flags.empty()) {
      std::istringstream fl(value);
      for (std::string f; fl >> f;) {
        if (f == "vmx" || f == "svm" || f == "lm" || f == "aes" || f == "avx2" || f == "hypervisor") {
          flags.insert(f);
        }
      }
    }
  }
  return {{"count", logical},
          {"cores", cores.empty() ? logical : static_cast<int>(cores.size())},
          {"model", model},
          {"vendor", vendor},
          {"flags", flags}};
}

nlohmann::json memory_info() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemTotal:") {
      return {{"bytes", kib * 1024}};
    }
  }
  return nullptr;
}

nlohmann::json nic_info() {
  nlohmann::json nics = nlohmann::json::array();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/class/net", ec)) {
    fs::path dev = e.path() / "device";
    if (!fs::exists(dev)) {
      continue;  // virtual: lo, bridges, tunnels
    }
    nlohmann::json n = {{"name", e.path().filename().string()}, {"mac", read_text(e.path() / "address")}};
    std::error_code ec2;
    fs::path drv = fs::read_symlink(dev / "driver", ec2);
    n["driver"] = ec2 ? nlohmann::json(nullptr) : nlohmann::json(drv.filename().string());
    fs::path bus = fs::canonical(dev, ec2);
    n["bus-path"] = ec2 ? "" : bus.filename().string();
    nics.push_back(n);
  }
  return nics;
}

std::string firmware_from_disks(const std::vector<disk::DiskPlan>& plans) {
  for (const disk::DiskPlan& p : plans) {
    for (const disk::Partition& part : p.table.partitions) {
      if (part.type == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" || part.type == "0xef") {
        return "uefi";
      }
    }
  }
  for (const disk::DiskPlan& p : plans) {
    if (p.table.has_boot_code) {
      return "bios";
    }
  }
  return "unknown";
}

}  // namespace

bool is_local_block_device(const std::string& source) {
  struct stat st {};
  return ::stat(source.c_str(), &st) == 0 && S_ISBLK(st.st_mode) &&
         fs::path(source).filename().string().rfind("loop", 0) != 0;
}

nlohmann::json hardware_profile(const std::vector<disk::DiskPlan>& plans, const std::vector<std::string>& images) {
  bool local = !plans.empty();
  for (const disk::DiskPlan& p : plans) {
    local = local && is_local_block_device(p.source);
  }
  nlohmann::json disks = nlohmann::json::array();
  for (std::size_t i = 0; i < plans.size(); ++i) {
    nlohmann::json d = {{"source", plans[i].source},
                        {"image", i < images.size() ? images[i] : ""},
                        {"size", plans[i].size},
                        {"partition-table", std::string(table_kind_name(plans[i].table.kind))}};
    if (local) {
      std::string name = fs::path(plans[i].source).filename().string();
      fs::path sys = fs::path("/sys/block") / name;
      d["model"] = read_text(sys / "device" / "model");
      d["rotational"] = read_text(sys / "queue" / "rotational") == "1";
    }
    disks.push_back(d);
  }
  nlohmann::json j = {{"type", "utsushi-hardware-profile"}, {"version", 1}, {"disks", disks}};
  if (local) {
    j["source"] = "running-machine";
    j["hostname"] = read_text("/proc/sys/kernel/hostname");
    j["cpus"] = cpu_info();
    j["memory"] = memory_info();
    j["nics"] = nic_info();
    j["firmware"] = fs::exists("/sys/firmware/efi") ? "uefi" : "bios";
    j["dmi"] = {{"vendor", read_text("/sys/class/dmi/id/sys_vendor")},
                {"product", read_text("/sys/class/dmi/id/product_name")}};
  } else {
    j["source"] = "images";
    j["cpus"] = nullptr;
    j["memory"] = nullptr;
    j["nics"] = nullptr;
    j["firmware"] = firmware_from_disks(plans);
  }
  return j;
}

Result<void> write_profile(const nlohmann::json& profile, const std::string& path) {
  auto file = UTSUSHI_TRY(AtomicFile::create(path));
  std::string text = profile.dump(2) + "\n";
  UTSUSHI_TRY(write_full(file.fd(), std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), path));
  return file.commit();
}

}  // namespace utsushi::p2v
