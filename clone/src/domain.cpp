// A clone's libvirt definition and the metadata that marks it as clone's.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include "plan.h"
#include "utsushi/virt/domain_spec.h"
#include "utsushi/virt/domain_xml.h"

namespace utsushi::clone::detail {
namespace {

constexpr std::uint64_t k_default_memory = 1ull << 30;

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(sep, start);
    std::string part = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!part.empty()) {
      out.push_back(part);
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  return out;
}

Result<virt::NicSpec> nic_of(const std::string& network) {
  virt::NicSpec n;
  if (network == "user") {
    n.kind = virt::NicKind::user;
  } else if (network.starts_with("network:") && network.size() > 8) {
    n.kind = virt::NicKind::network;
    n.source = network.substr(8);
  } else if (network.starts_with("bridge:") && network.size() > 7) {
    n.kind = virt::NicKind::bridge;
    n.source = network.substr(7);
  } else {
    return fail(Errc::invalid_argument,
                fmt::format("--network {}: give network:NAME, bridge:DEVICE, user or none", network));
  }
  return n;
}

Result<std::string> image_domain_xml(const CreateOptions& o, const guest::GuestOs& os, const PlannedClone& c,
                                     const std::vector<std::string>& disk_paths, const virt::Metadata& metadata) {
  virt::DomainSpec s;
  virt::AccelChoice accel = UTSUSHI_TRY(virt::choose_accel(o.accel));
  s.type = virt::virt_type_for(accel.accel);
  s.name = c.record.name;
  s.uuid = c.record.uuid;
  s.title = fmt::format("clone of {}", metadata.values.at(k_golden));
  s.memory_bytes = o.memory_bytes.value_or(k_default_memory);
  s.vcpus = o.cpus.value_or(1);
  s.machine = virt::Machine::q35;
  s.firmware = os.firmware == guest::Firmware::uefi ? virt::Firmware::uefi : virt::Firmware::bios;
  s.uefi = virt::debian_ovmf();
  for (std::size_t i = 0; i < disk_paths.size(); ++i) {
    virt::DiskSpec d;
    d.path = disk_paths[i];
    d.format = "qcow2";
    if (i == 0) {
      d.boot_order = 1;
    }
    s.disks.push_back(std::move(d));
  }
  if (o.network != "none") {
    virt::NicSpec n = UTSUSHI_TRY(nic_of(o.network));
    n.mac = c.record.macs.at(0);
    s.nics.push_back(std::move(n));
  }
  s.metadata = metadata;
  return virt::encode_domain(s);
}

}  // namespace

Result<std::size_t> nic_count(const CreateOptions& o, const Golden& golden) {
  if (!golden.domain.empty()) {
    return golden.macs.size();
  }
  if (o.network == "none") {
    return 0;
  }
  UTSUSHI_TRY(nic_of(o.network));
  return 1;
}

virt::Metadata clone_metadata(const PlannedClone& c, const HostState& host, const Golden& golden, CloneKind kind,
                              bool complete) {
  virt::Metadata m;
  m.tool = k_tool;
  m.values[k_state] = complete ? "complete" : "incomplete";
  m.values[k_pool] = host.pool_name;
  m.values[k_volumes] = fmt::format("{}", fmt::join(c.volumes, "\n"));
  m.values[k_golden] = golden.spec;
  if (kind == CloneKind::linked) {
    std::vector<std::string> volumes;
    for (const GoldenDisk& d : golden.disks) {
      volumes.push_back(d.volume);
    }
    m.values[k_golden_volumes] = fmt::format("{}", fmt::join(volumes, "\n"));
  }
  m.values[k_hostname] = c.record.hostname;
  m.values[k_address] = c.record.address;
  m.values[k_machine_id] = c.record.machine_id;
  m.values[k_macs] = fmt::format("{}", fmt::join(c.record.macs, " "));
  for (const auto& [type, fingerprint] : c.record.host_keys) {
    m.values[k_host_key_prefix + type] = fingerprint;
  }
  return m;
}

CloneRecord record_from_metadata(const virt::DomainInfo& d, const std::string& uri) {
  CloneRecord r;
  r.name = d.name;
  r.uri = uri;
  r.uuid = d.uuid;
  r.started = d.active;
  if (!d.metadata) {
    return r;
  }
  auto value = [&](const std::string& key) {
    auto it = d.metadata->values.find(key);
    return it == d.metadata->values.end() ? std::string() : it->second;
  };
  r.hostname = value(k_hostname);
  r.address = value(k_address);
  r.machine_id = value(k_machine_id);
  r.macs = split(value(k_macs), ' ');
  r.disks = split(value(k_volumes), '\n');  // names; the caller resolves paths if it can
  for (const auto& [key, v] : d.metadata->values) {
    if (key.starts_with(k_host_key_prefix)) {
      r.host_keys[key.substr(std::string_view(k_host_key_prefix).size())] = v;
    }
  }
  return r;
}

Result<std::string> clone_domain_xml(const CreateOptions& o, const Golden& golden, const guest::GuestOs& os,
                                     const PlannedClone& c, const std::vector<std::string>& disk_paths,
                                     const virt::Metadata& metadata) {
  if (golden.domain.empty()) {
    return image_domain_xml(o, os, c, disk_paths, metadata);
  }
  virt::TemplateEdits e;
  e.name = c.record.name;
  e.uuid = c.record.uuid;
  e.macs = c.record.macs;
  for (std::size_t i = 0; i < golden.disks.size(); ++i) {
    e.disks.push_back({golden.disks[i].target, disk_paths.at(i), "qcow2"});
  }
  e.memory_bytes = o.memory_bytes;
  e.vcpus = o.cpus;
  e.metadata = metadata;
  return virt::instantiate_template(golden.template_xml, e);
}

}  // namespace utsushi::clone::detail
