// from_profile (machine_profile.h): a domain sized like the captured machine.
#include <fmt/core.h>

#include "utsushi/common/log.h"
#include "utsushi/virt/machine_profile.h"
#include "xml_util.h"

namespace utsushi::virt {

namespace {

constexpr std::uint64_t k_mib = 1ull << 20;
constexpr std::uint64_t k_default_memory = 1ull << 30;

// sockets x cores x threads from the logical and physical counts, when they
// divide evenly (one socket: the profile does not count sockets).
std::optional<CpuTopology> topology_of(const CpuInfo& c, unsigned vcpus) {
  if (c.cores == 0 || c.count != vcpus || c.count % c.cores != 0) {
    return std::nullopt;
  }
  return CpuTopology{1, c.cores, c.count / c.cores};
}

// One NIC per profile NIC, with its MAC (so configuration bound to the MAC
// keeps working); one without a MAC when the profile knows none.
Result<std::vector<NicSpec>> nics_of(const MachineProfile& p, const ProfileDomainOptions& o) {
  NicSpec base{o.nic_kind, o.nic_source, o.nic_model, "", std::nullopt};
  std::vector<NicSpec> nics;
  for (const auto& n : p.nics.value_or(std::vector<NicInfo>{})) {
    if (!xml::is_mac(n.mac)) {
      return fail(Errc::invalid_argument, fmt::format("machine profile: NIC {} has MAC '{}'", n.name, n.mac));
    }
    nics.push_back(base);
    nics.back().mac = xml::lower(n.mac);
  }
  if (nics.empty()) {
    nics.push_back(base);
  }
  return nics;
}

}  // namespace

Result<DomainSpec> from_profile(const MachineProfile& p, const ProfileDomainOptions& o) {
  if (o.name.empty()) {
    return fail(Errc::invalid_argument, "from_profile: the domain has no name");
  }
  if (o.disks.empty()) {
    return fail(Errc::invalid_argument, fmt::format("from_profile: domain {} has no disk", o.name));
  }
  auto accel = UTSUSHI_TRY(choose_accel(o.accel));
  UTSUSHI_LOG_INFO("domain {}: accelerator {} ({})", o.name, accel_name(accel.accel), accel.reason);
  DomainSpec s;
  s.type = virt_type_for(accel.accel);
  s.name = o.name;
  s.uuid = o.uuid;
  s.machine = Machine::q35;
  s.vcpus = o.vcpus.value_or(p.cpus && p.cpus->count > 0 ? p.cpus->count : 1);
  if (p.cpus) {
    s.topology = topology_of(*p.cpus, s.vcpus);
  }
  // MemTotal is a little below the installed memory: whole MiB.
  std::uint64_t memory = p.memory_bytes.value_or(k_default_memory);
  s.memory_bytes = o.memory_bytes.value_or((memory + k_mib - 1) / k_mib * k_mib);
  s.firmware = o.firmware.value_or(p.firmware == FirmwareKind::uefi ? Firmware::uefi : Firmware::bios);
  if (s.firmware == Firmware::uefi) {
    s.uefi = o.uefi;
  }
  s.disks = o.disks;
  if (!s.disks.front().boot_order) {
    s.disks.front().boot_order = 1;
  }
  s.nics = UTSUSHI_TRY(nics_of(p, o));
  s.metadata = o.metadata;
  return s;
}

}  // namespace utsushi::virt
