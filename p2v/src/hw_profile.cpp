#include "utsushi/p2v/hw_profile.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "utsushi/common/meminfo.h"

namespace utsushi::p2v {
namespace {

namespace fs = std::filesystem;
using virt::CpuInfo;
using virt::DiskInfo;
using virt::FirmwareKind;
using virt::MachineProfile;
using virt::NicInfo;

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

CpuInfo cpu_info() {
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
  unsigned count = static_cast<unsigned>(logical);
  return {count, cores.empty() ? count : static_cast<unsigned>(cores.size()), model, vendor,
          std::vector<std::string>(flags.begin(), flags.end())};
}


// "ADDRESS/PREFIX" of every IPv4 and IPv6 address configured on each
// interface, by interface name.
std::map<std::string, std::vector<std::string>> interface_addresses() {
  std::map<std::string, std::vector<std::string>> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return out;
  }
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || !a->ifa_netmask) {
      continue;
    }
    int family = a->ifa_addr->sa_family;
    char text[INET6_ADDRSTRLEN] = {};
    int prefix = 0;
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
      auto* mask = reinterpret_cast<sockaddr_in*>(a->ifa_netmask);
      ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      prefix = std::popcount(mask->sin_addr.s_addr);
    } else if (family == AF_INET6) {
      auto* in = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
      auto* mask = reinterpret_cast<sockaddr_in6*>(a->ifa_netmask);
      ::inet_ntop(AF_INET6, &in->sin6_addr, text, sizeof text);
      for (unsigned char byte : mask->sin6_addr.s6_addr) {
        prefix += std::popcount(byte);
      }
    } else {
      continue;
    }
    out[a->ifa_name].push_back(std::string(text) + "/" + std::to_string(prefix));
  }
  ::freeifaddrs(list);
  return out;
}

std::vector<NicInfo> nic_info() {
  std::vector<NicInfo> nics;
  auto addresses = interface_addresses();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/class/net", ec)) {
    fs::path dev = e.path() / "device";
    if (!fs::exists(dev)) {
      continue;  // virtual: lo, bridges, tunnels
    }
    NicInfo n;
    n.name = e.path().filename().string();
    n.mac = read_text(e.path() / "address");
    std::error_code ec2;
    fs::path drv = fs::read_symlink(dev / "driver", ec2);
    if (!ec2) {
      n.driver = drv.filename().string();
    }
    fs::path bus = fs::canonical(dev, ec2);
    n.bus_path = ec2 ? "" : bus.filename().string();
    n.addresses = addresses[n.name];
    nics.push_back(std::move(n));
  }
  return nics;
}

void firmware_from_disks(const std::vector<disk::DiskPlan>& plans, MachineProfile& profile) {
  for (const disk::DiskPlan& p : plans) {
    for (const disk::Partition& part : p.table.partitions) {
      if (part.type == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" || part.type == "0xef") {
        profile.firmware = FirmwareKind::uefi;
        profile.firmware_evidence = "an EFI system partition on " + p.source;
        return;
      }
    }
  }
  for (const disk::DiskPlan& p : plans) {
    if (p.table.has_boot_code) {
      profile.firmware = FirmwareKind::bios;
      profile.firmware_evidence = "MBR boot code on " + p.source;
      return;
    }
  }
  profile.firmware = FirmwareKind::unknown;
  profile.firmware_evidence = "no EFI system partition and no MBR boot code on the disks";
}

}  // namespace

bool is_local_block_device(const std::string& source) {
  struct stat st {};
  return ::stat(source.c_str(), &st) == 0 && S_ISBLK(st.st_mode) &&
         fs::path(source).filename().string().rfind("loop", 0) != 0;
}

MachineProfile hardware_profile(const std::vector<disk::DiskPlan>& plans, const std::vector<std::string>& images) {
  bool local = !plans.empty();
  for (const disk::DiskPlan& p : plans) {
    local = local && is_local_block_device(p.source);
  }
  MachineProfile profile;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    DiskInfo d;
    d.source = plans[i].source;
    d.image = i < images.size() ? images[i] : "";
    d.size = plans[i].size;
    d.partition_table = table_kind_name(plans[i].table.kind);
    if (local) {
      std::string name = fs::path(plans[i].source).filename().string();
      fs::path sys = fs::path("/sys/block") / name;
      d.model = read_text(sys / "device" / "model");
      d.rotational = read_text(sys / "queue" / "rotational") == "1";
    }
    profile.disks.push_back(std::move(d));
  }
  if (!local) {
    profile.source = virt::ProfileSource::images;
    firmware_from_disks(plans, profile);
    return profile;
  }
  profile.source = virt::ProfileSource::host;
  profile.hostname = read_text("/proc/sys/kernel/hostname");
  profile.cpus = cpu_info();
  profile.memory_bytes = meminfo_bytes("MemTotal");
  profile.nics = nic_info();
  bool efi = fs::exists("/sys/firmware/efi");
  profile.firmware = efi ? FirmwareKind::uefi : FirmwareKind::bios;
  profile.firmware_evidence = efi ? "/sys/firmware/efi exists" : "/sys/firmware/efi does not exist";
  profile.dmi = virt::DmiInfo{read_text("/sys/class/dmi/id/sys_vendor"), read_text("/sys/class/dmi/id/product_name")};
  return profile;
}

}  // namespace utsushi::p2v
