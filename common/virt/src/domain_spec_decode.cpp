// decode_domain (domain_spec.h): libvirt XML back into a DomainSpec.
#include <fmt/core.h>
#include <pugixml.hpp>

#include <charconv>

#include "utsushi/virt/domain_spec.h"
#include "xml_util.h"

namespace utsushi::virt {

namespace {

Result<unsigned> parse_count(std::string_view text, std::string_view what, unsigned min_value) {
  unsigned n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < min_value) {
    return fail(Errc::invalid_argument, fmt::format("domain XML: {}: '{}' is not a valid count", what, text));
  }
  return n;
}

// An optional unsigned attribute; `fallback` when it is absent.
Result<unsigned> count_attr(const pugi::xml_node& node, const char* name, std::string_view what, unsigned fallback) {
  auto a = node.attribute(name);
  if (!a) {
    return fallback;
  }
  return parse_count(a.value(), what, 1);
}

Result<VirtType> parse_type(std::string_view type) {
  if (type == "kvm") {
    return VirtType::kvm;
  }
  if (type == "qemu") {
    return VirtType::qemu;
  }
  return fail(Errc::invalid_argument, fmt::format("domain XML: domain type '{}' is neither kvm nor qemu", type));
}

// libvirt canonicalises "q35" to "pc-q35-7.2" and "pc" to "pc-i440fx-7.2".
Result<Machine> parse_machine(std::string_view m) {
  if (m == "q35" || m.starts_with("pc-q35-")) {
    return Machine::q35;
  }
  if (m.empty() || m == "pc" || m.starts_with("pc-i440fx-")) {
    return Machine::pc;
  }
  return fail(Errc::invalid_argument, fmt::format("domain XML: machine type '{}' is neither q35 nor pc", m));
}

Result<std::optional<unsigned>> boot_order(const pugi::xml_node& device, std::string_view what) {
  auto boot = device.child("boot");
  if (!boot) {
    return std::nullopt;
  }
  return UTSUSHI_TRY(parse_count(boot.attribute("order").value(), what, 1));
}

Result<void> read_os(const pugi::xml_node& root, DomainSpec& s) {
  auto os = root.child("os");
  auto type = os.child("type");
  s.machine = UTSUSHI_TRY(parse_machine(type.attribute("machine").value()));
  if (std::string_view arch = type.attribute("arch").value(); !arch.empty() && arch != "x86_64") {
    return fail(Errc::invalid_argument, fmt::format("domain XML: architecture '{}' is not x86_64", arch));
  }
  auto loader = os.child("loader");
  bool efi = std::string_view(os.attribute("firmware").value()) == "efi" ||
             std::string_view(loader.attribute("type").value()) == "pflash";
  s.firmware = efi ? Firmware::uefi : Firmware::bios;
  if (efi) {
    s.uefi.loader = loader.text().get();
    s.uefi.nvram_template = os.child("nvram").attribute("template").value();
    s.uefi.nvram = os.child("nvram").text().get();
  }
  return {};
}

Result<void> read_cpus(const pugi::xml_node& root, DomainSpec& s) {
  auto memory = root.child("memory");
  if (!memory) {
    return fail(Errc::invalid_argument, "domain XML: no <memory>");
  }
  s.memory_bytes = UTSUSHI_TRY(xml::scaled_bytes(memory.text().get(), memory.attribute("unit").value(), "<memory>"));
  if (s.memory_bytes == 0) {
    return fail(Errc::invalid_argument, "domain XML: <memory> is 0");
  }
  auto vcpu = root.child("vcpu");
  s.vcpus = vcpu ? UTSUSHI_TRY(parse_count(vcpu.text().get(), "<vcpu>", 1)) : 1;
  if (auto t = root.child("cpu").child("topology"); t) {
    CpuTopology topo;
    topo.sockets = UTSUSHI_TRY(count_attr(t, "sockets", "<topology sockets>", 1));
    topo.cores = UTSUSHI_TRY(count_attr(t, "cores", "<topology cores>", 1));
    topo.threads = UTSUSHI_TRY(count_attr(t, "threads", "<topology threads>", 1));
    s.topology = topo;
  }
  return {};
}

Result<std::optional<DiskSpec>> read_disk(const pugi::xml_node& disk) {
  std::string_view device = disk.attribute("device").as_string("disk");
  std::string_view type = disk.attribute("type").value();
  if (device != "disk" || (type != "file" && type != "block")) {
    return std::nullopt;
  }
  DiskSpec d;
  d.kind = type == "block" ? DiskSourceKind::block : DiskSourceKind::file;
  d.target = disk.child("target").attribute("dev").value();
  if (d.target.empty()) {
    return fail(Errc::invalid_argument, "domain XML: a disk without <target dev>");
  }
  d.path = disk.child("source").attribute(type == "block" ? "dev" : "file").value();
  if (d.path.empty()) {
    return fail(Errc::invalid_argument, fmt::format("domain XML: disk {} has no source", d.target));
  }
  auto driver = disk.child("driver");
  d.format = driver.attribute("type").as_string("raw");
  d.cache = driver.attribute("cache").value();
  std::string_view bus = disk.child("target").attribute("bus").value();
  d.bus = bus.empty() ? DiskBus::virtio
                      : UTSUSHI_TRY_CTX(parse_disk_bus(bus), fmt::format("domain XML: disk {}", d.target));
  d.boot_order = UTSUSHI_TRY(boot_order(disk, fmt::format("boot order of disk {}", d.target)));
  d.readonly = static_cast<bool>(disk.child("readonly"));
  return d;
}

Result<std::optional<NicSpec>> read_nic(const pugi::xml_node& nic) {
  std::string_view type = nic.attribute("type").value();
  if (type != "network" && type != "bridge" && type != "user") {
    return std::nullopt;
  }
  NicSpec n;
  n.kind = type == "bridge" ? NicKind::bridge : type == "user" ? NicKind::user : NicKind::network;
  n.source = type == "user" ? std::string() : nic.child("source").attribute(type == "bridge" ? "bridge" : "network").value();
  n.mac = xml::lower(nic.child("mac").attribute("address").value());
  if (!n.mac.empty() && !xml::is_mac(n.mac)) {
    return fail(Errc::invalid_argument, fmt::format("domain XML: '{}' is not a MAC address", n.mac));
  }
  if (n.source.empty() && n.kind != NicKind::user) {
    return fail(Errc::invalid_argument, fmt::format("domain XML: a {} interface without its source", type));
  }
  std::string_view model = nic.child("model").attribute("type").value();
  n.model = model.empty() ? NicModel::virtio : UTSUSHI_TRY_CTX(parse_nic_model(model), "domain XML: interface");
  n.boot_order = UTSUSHI_TRY(boot_order(nic, "boot order of an interface"));
  return n;
}

Result<void> read_devices(const pugi::xml_node& devices, DomainSpec& s) {
  s.serial_console = false;
  s.rng = false;
  s.memballoon = false;
  for (auto dev : devices.children()) {
    std::string_view kind = dev.name();
    if (kind == "disk") {
      if (auto d = UTSUSHI_TRY(read_disk(dev)); d) {
        s.disks.push_back(std::move(*d));
      }
    } else if (kind == "interface") {
      if (auto n = UTSUSHI_TRY(read_nic(dev)); n) {
        s.nics.push_back(std::move(*n));
      }
    } else if (kind == "console") {
      s.serial_console = s.serial_console || std::string_view(dev.attribute("type").value()) == "pty";
    } else if (kind == "rng") {
      s.rng = true;
    } else if (kind == "memballoon") {
      s.memballoon = std::string_view(dev.attribute("model").value()) != "none";
    }
  }
  return {};
}

}  // namespace

Result<DomainSpec> decode_domain(std::string_view text) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(xml::parse_domain(doc, text));
  DomainSpec s;
  s.type = UTSUSHI_TRY(parse_type(root.attribute("type").value()));
  s.name = root.child_value("name");
  if (s.name.empty()) {
    return fail(Errc::invalid_argument, "domain XML: no <name>");
  }
  s.uuid = xml::lower(root.child_value("uuid"));
  if (!s.uuid.empty() && !xml::is_uuid(s.uuid)) {
    return fail(Errc::invalid_argument, fmt::format("domain XML: '{}' is not a UUID", s.uuid));
  }
  s.title = root.child_value("title");
  s.description = root.child_value("description");
  if (auto m = xml::find_metadata(root); m) {
    s.metadata = UTSUSHI_TRY(xml::read_metadata(m));
  }
  UTSUSHI_TRY_CTX(read_cpus(root, s), s.name);
  UTSUSHI_TRY_CTX(read_os(root, s), s.name);
  UTSUSHI_TRY_CTX(read_devices(root.child("devices"), s), s.name);
  return s;
}

}  // namespace utsushi::virt
