// encode_domain (domain_spec.h) and the names of its enums.
#include "utsushi/virt/domain_spec.h"

#include <fmt/core.h>
#include <pugixml.hpp>

#include <set>

#include "xml_util.h"

namespace utsushi::virt {

std::string_view name_of(VirtType v) noexcept { return v == VirtType::kvm ? "kvm" : "qemu"; }
std::string_view name_of(Machine m) noexcept { return m == Machine::q35 ? "q35" : "pc"; }
std::string_view name_of(Firmware f) noexcept { return f == Firmware::uefi ? "uefi" : "bios"; }

std::string_view name_of(DiskBus b) noexcept {
  switch (b) {
    case DiskBus::virtio: return "virtio";
    case DiskBus::scsi: return "scsi";
    case DiskBus::sata: return "sata";
    case DiskBus::ide: return "ide";
  }
  return "virtio";
}

std::string_view name_of(NicModel m) noexcept {
  switch (m) {
    case NicModel::virtio: return "virtio";
    case NicModel::e1000e: return "e1000e";
    case NicModel::e1000: return "e1000";
  }
  return "virtio";
}

namespace {

template <class E, std::size_t N>
Result<E> parse_enum(std::string_view name, const E (&values)[N], std::string_view what) {
  std::string known;
  for (E v : values) {
    if (name_of(v) == name) {
      return v;
    }
    known += fmt::format("{}{}", known.empty() ? "" : ", ", name_of(v));
  }
  return fail(Errc::invalid_argument, fmt::format("unknown {} '{}' (expected {})", what, name, known));
}

}  // namespace

Result<DiskBus> parse_disk_bus(std::string_view name) {
  static constexpr DiskBus k_all[] = {DiskBus::virtio, DiskBus::scsi, DiskBus::sata, DiskBus::ide};
  return parse_enum(name, k_all, "disk bus");
}

Result<NicModel> parse_nic_model(std::string_view name) {
  static constexpr NicModel k_all[] = {NicModel::virtio, NicModel::e1000e, NicModel::e1000};
  return parse_enum(name, k_all, "NIC model");
}

Result<Firmware> parse_firmware(std::string_view name) {
  static constexpr Firmware k_all[] = {Firmware::bios, Firmware::uefi};
  return parse_enum(name, k_all, "firmware");
}

VirtType virt_type_for(Accel accel) noexcept { return accel == Accel::kvm ? VirtType::kvm : VirtType::qemu; }

UefiFirmware debian_ovmf() {
  return {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd", ""};
}

namespace {

// Target device names per bus: virtio disks are vdX, SCSI and SATA sdX, IDE hdX.
std::string target_prefix(DiskBus bus) {
  switch (bus) {
    case DiskBus::virtio: return "vd";
    case DiskBus::ide: return "hd";
    default: return "sd";
  }
}

// vda..vdz, vdaa..vdzz (libvirt's virDiskNameToIndex order).
std::string disk_letters(std::size_t index) {
  std::string s;
  for (std::size_t i = index + 1; i > 0; i = (i - 1) / 26) {
    s.insert(s.begin(), static_cast<char>('a' + (i - 1) % 26));
  }
  return s;
}

Result<void> check_spec(const DomainSpec& s) {
  auto bad = [&](std::string what) { return fail(Errc::invalid_argument, fmt::format("domain {}: {}", s.name, what)); };
  if (s.name.empty()) {
    return fail(Errc::invalid_argument, "domain: the name is empty");
  }
  if (!s.uuid.empty() && !xml::is_uuid(s.uuid)) {
    return bad(fmt::format("'{}' is not a UUID", s.uuid));
  }
  if (s.memory_bytes == 0) {
    return bad("no memory");
  }
  if (s.vcpus == 0) {
    return bad("0 vCPUs");
  }
  if (auto t = s.topology; t && static_cast<std::uint64_t>(t->sockets) * t->cores * t->threads != s.vcpus) {
    return bad(fmt::format("topology {}x{}x{} is not {} vCPUs", t->sockets, t->cores, t->threads, s.vcpus));
  }
  if (s.firmware == Firmware::uefi && s.uefi.loader.empty()) {
    return bad("UEFI without a loader");
  }
  for (const auto& d : s.disks) {
    if (d.path.empty() || d.format.empty()) {
      return bad("a disk without a path or format");
    }
  }
  for (const auto& n : s.nics) {
    if (!n.mac.empty() && !xml::is_mac(n.mac)) {
      return bad(fmt::format("'{}' is not a MAC address", n.mac));
    }
    if (n.source.empty() && n.kind != NicKind::user) {
      return bad("an interface without a network or bridge");
    }
  }
  return {};
}

// The disks' target names: as given, or the next free one of their bus.
Result<std::vector<std::string>> disk_targets(const DomainSpec& s) {
  std::set<std::string> used;
  for (const auto& d : s.disks) {
    if (!d.target.empty() && !used.insert(d.target).second) {
      return fail(Errc::invalid_argument, fmt::format("domain {}: two disks on target {}", s.name, d.target));
    }
  }
  std::vector<std::string> out;
  for (const auto& d : s.disks) {
    std::string t = d.target;
    for (std::size_t i = 0; t.empty(); ++i) {
      std::string candidate = fmt::format("{}{}", target_prefix(d.bus), disk_letters(i));
      if (used.insert(candidate).second) {
        t = candidate;
      }
    }
    out.push_back(t);
  }
  return out;
}

void add_text(pugi::xml_node parent, const char* name, const std::string& text) {
  parent.append_child(name).text() = text.c_str();
}

void add_memory(pugi::xml_node root, const char* name, std::uint64_t bytes) {
  auto m = root.append_child(name);
  m.append_attribute("unit") = "KiB";
  m.text() = std::to_string(bytes / 1024 + (bytes % 1024 != 0)).c_str();
}

void add_os(pugi::xml_node root, const DomainSpec& s, bool boot_orders) {
  auto os = root.append_child("os");
  auto type = os.append_child("type");
  type.append_attribute("arch") = "x86_64";
  type.append_attribute("machine") = std::string(name_of(s.machine)).c_str();
  type.text() = "hvm";
  if (s.firmware == Firmware::uefi) {
    auto loader = os.append_child("loader");
    loader.append_attribute("readonly") = "yes";
    loader.append_attribute("type") = "pflash";
    loader.text() = s.uefi.loader.c_str();
    auto nvram = os.append_child("nvram");
    if (!s.uefi.nvram_template.empty()) {
      nvram.append_attribute("template") = s.uefi.nvram_template.c_str();
    }
    nvram.text() = s.uefi.nvram.c_str();
  }
  if (!boot_orders) {
    os.append_child("boot").append_attribute("dev") = "hd";
  }
}

void add_disk(pugi::xml_node devices, const DiskSpec& d, const std::string& target) {
  bool block = d.kind == DiskSourceKind::block;
  auto disk = devices.append_child("disk");
  disk.append_attribute("type") = block ? "block" : "file";
  disk.append_attribute("device") = "disk";
  auto driver = disk.append_child("driver");
  driver.append_attribute("name") = "qemu";
  driver.append_attribute("type") = d.format.c_str();
  if (!d.cache.empty()) {
    driver.append_attribute("cache") = d.cache.c_str();
  }
  disk.append_child("source").append_attribute(block ? "dev" : "file") = d.path.c_str();
  auto t = disk.append_child("target");
  t.append_attribute("dev") = target.c_str();
  t.append_attribute("bus") = std::string(name_of(d.bus)).c_str();
  if (d.boot_order) {
    disk.append_child("boot").append_attribute("order") = *d.boot_order;
  }
  if (d.readonly) {
    disk.append_child("readonly");
  }
}

void add_nic(pugi::xml_node devices, const NicSpec& n) {
  bool bridge = n.kind == NicKind::bridge;
  auto nic = devices.append_child("interface");
  nic.append_attribute("type") = n.kind == NicKind::user ? "user" : bridge ? "bridge" : "network";
  if (!n.mac.empty()) {
    nic.append_child("mac").append_attribute("address") = xml::lower(n.mac).c_str();
  }
  if (n.kind != NicKind::user) {
    nic.append_child("source").append_attribute(bridge ? "bridge" : "network") = n.source.c_str();
  }
  nic.append_child("model").append_attribute("type") = std::string(name_of(n.model)).c_str();
  if (n.boot_order) {
    nic.append_child("boot").append_attribute("order") = *n.boot_order;
  }
}

void add_console(pugi::xml_node devices) {
  auto serial = devices.append_child("serial");
  serial.append_attribute("type") = "pty";
  serial.append_child("target").append_attribute("port") = 0;
  auto console = devices.append_child("console");
  console.append_attribute("type") = "pty";
  auto target = console.append_child("target");
  target.append_attribute("type") = "serial";
  target.append_attribute("port") = 0;
}

void add_devices(pugi::xml_node root, const DomainSpec& s, const std::vector<std::string>& targets) {
  auto devices = root.append_child("devices");
  bool scsi = false;
  for (std::size_t i = 0; i < s.disks.size(); ++i) {
    add_disk(devices, s.disks[i], targets[i]);
    scsi = scsi || s.disks[i].bus == DiskBus::scsi;
  }
  if (scsi) {
    auto c = devices.append_child("controller");
    c.append_attribute("type") = "scsi";
    c.append_attribute("index") = 0;
    c.append_attribute("model") = "virtio-scsi";
  }
  for (const auto& n : s.nics) {
    add_nic(devices, n);
  }
  if (s.serial_console) {
    add_console(devices);
  }
  if (s.rng) {
    auto rng = devices.append_child("rng");
    rng.append_attribute("model") = "virtio";
    auto backend = rng.append_child("backend");
    backend.append_attribute("model") = "random";
    backend.text() = "/dev/urandom";
  }
  devices.append_child("memballoon").append_attribute("model") = s.memballoon ? "virtio" : "none";
}

}  // namespace

Result<std::string> encode_domain(const DomainSpec& s) {
  UTSUSHI_TRY(check_spec(s));
  auto targets = UTSUSHI_TRY(disk_targets(s));
  pugi::xml_document doc;
  auto root = doc.append_child("domain");
  root.append_attribute("type") = std::string(name_of(s.type)).c_str();
  add_text(root, "name", s.name);
  if (!s.uuid.empty()) {
    add_text(root, "uuid", xml::lower(s.uuid));
  }
  if (!s.title.empty()) {
    add_text(root, "title", s.title);
  }
  if (!s.description.empty()) {
    add_text(root, "description", s.description);
  }
  if (s.metadata) {
    UTSUSHI_TRY(xml::append_metadata(root.append_child("metadata"), *s.metadata));
  }
  add_memory(root, "memory", s.memory_bytes);
  add_memory(root, "currentMemory", s.memory_bytes);
  root.append_child("vcpu").text() = s.vcpus;
  if (s.topology) {
    auto t = root.append_child("cpu").append_child("topology");
    t.append_attribute("sockets") = s.topology->sockets;
    t.append_attribute("cores") = s.topology->cores;
    t.append_attribute("threads") = s.topology->threads;
  }
  bool boot_orders = false;
  for (const auto& d : s.disks) {
    boot_orders = boot_orders || d.boot_order;
  }
  for (const auto& n : s.nics) {
    boot_orders = boot_orders || n.boot_order;
  }
  add_os(root, s, boot_orders);
  auto features = root.append_child("features");
  features.append_child("acpi");
  features.append_child("apic");
  root.append_child("clock").append_attribute("offset") = "utc";
  add_text(root, "on_poweroff", "destroy");
  add_text(root, "on_reboot", "restart");
  add_text(root, "on_crash", "destroy");
  add_devices(root, s, targets);
  return xml::save(doc);
}

}  // namespace utsushi::virt
