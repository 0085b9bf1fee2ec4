#pragma once
// A typed libvirt domain definition for the guests utsushi makes (p2v
// convert, clone), with a pure encode/decode pair over pugixml
// (https://libvirt.org/formatdomain.html). encode() writes:
//
//   <domain type='kvm|qemu'>  name, uuid, title, description, <metadata> (metadata.h)
//     <memory/> <currentMemory/> (KiB) <vcpu/> [<cpu><topology/></cpu>]
//     <os [firmware-less]><type arch='x86_64' machine='q35|pc'>hvm</type>
//         [<loader readonly='yes' type='pflash'>CODE</loader><nvram template='VARS'>[PATH]</nvram>]
//     </os>
//     <features><acpi/><apic/></features> <clock offset='utc'/> on_poweroff/reboot/crash
//     <devices> disks, [virtio-scsi controller], interfaces, serial pty + console,
//               virtio rng (/dev/urandom), memballoon (virtio or none) </devices>
//   </domain>
//
// Every value goes through pugixml, so any name is escaped. decode() reads
// such a definition back, as encode() or libvirt wrote it; elements it does
// not model are ignored.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/virt/accel.h"
#include "utsushi/virt/metadata.h"

namespace utsushi::virt {

enum class VirtType { kvm, qemu };  // <domain type>: KVM, or QEMU's TCG
enum class Machine { q35, pc };     // decode() maps libvirt's versioned pc-q35-*/pc-i440fx-* here
enum class Firmware { bios, uefi };
enum class DiskBus { virtio, scsi, sata, ide };
enum class DiskSourceKind { file, block };
enum class NicKind { network, bridge, user };  // user: QEMU's user-mode networking (no source)
enum class NicModel { virtio, e1000e, e1000 };

std::string_view name_of(VirtType v) noexcept;  // "kvm", "qemu"
std::string_view name_of(Machine m) noexcept;   // "q35", "pc"
std::string_view name_of(Firmware f) noexcept;  // "bios", "uefi"
std::string_view name_of(DiskBus b) noexcept;   // "virtio", "scsi", "sata", "ide"
std::string_view name_of(NicModel m) noexcept;  // "virtio", "e1000e", "e1000"
[[nodiscard]] Result<DiskBus> parse_disk_bus(std::string_view name);
[[nodiscard]] Result<NicModel> parse_nic_model(std::string_view name);
[[nodiscard]] Result<Firmware> parse_firmware(std::string_view name);

// The domain type the accelerator verdict calls for (accel.h).
VirtType virt_type_for(Accel accel) noexcept;

struct CpuTopology {
  unsigned sockets = 1;
  unsigned cores = 1;
  unsigned threads = 1;
  bool operator==(const CpuTopology&) const = default;
};

// UEFI: OVMF's code (read-only pflash) and the domain's own variable store,
// which libvirt copies from `nvram_template` when `nvram` does not exist yet
// (an empty `nvram`: libvirt's default path, .../nvram/NAME_VARS.fd).
struct UefiFirmware {
  std::string loader;
  std::string nvram_template;
  std::string nvram;
  bool operator==(const UefiFirmware&) const = default;
};
// Debian's OVMF (package ovmf, 4 MiB flash): /usr/share/OVMF/OVMF_CODE_4M.fd
// and OVMF_VARS_4M.fd, libvirt's default NVRAM path.
UefiFirmware debian_ovmf();

struct DiskSpec {
  std::string path;
  DiskSourceKind kind = DiskSourceKind::file;
  std::string format = "qcow2";     // <driver type>: qcow2, raw, ...
  DiskBus bus = DiskBus::virtio;
  std::string target;               // empty: encode() picks vda, sda, hda... by bus, in order
  std::optional<unsigned> boot_order;
  bool readonly = false;
  std::string cache;                // empty: the hypervisor's default; none, writeback, ...
  bool operator==(const DiskSpec&) const = default;
};

struct NicSpec {
  NicKind kind = NicKind::network;
  std::string source = "default";   // network name or bridge device (unused for user)
  NicModel model = NicModel::virtio;
  std::string mac;                  // empty: libvirt picks one
  std::optional<unsigned> boot_order;
  bool operator==(const NicSpec&) const = default;
};

struct DomainSpec {
  VirtType type = VirtType::kvm;
  std::string name;
  std::string uuid;                 // empty: libvirt makes one up
  std::string title;
  std::string description;
  std::uint64_t memory_bytes = 0;   // encoded in KiB, rounded up
  unsigned vcpus = 1;
  std::optional<CpuTopology> topology;  // sockets * cores * threads == vcpus
  Machine machine = Machine::q35;
  Firmware firmware = Firmware::bios;
  UefiFirmware uefi;                // used when firmware is uefi
  std::vector<DiskSpec> disks;
  std::vector<NicSpec> nics;
  bool serial_console = true;       // a pty serial port and its console (virsh console)
  bool rng = true;                  // virtio RNG fed from the host's /dev/urandom
  bool memballoon = true;           // false: <memballoon model='none'/> (libvirt adds one otherwise)
  std::optional<Metadata> metadata;
  bool operator==(const DomainSpec&) const = default;
};

// The libvirt XML of `spec`. Errc::invalid_argument naming the field when
// it is not valid: an empty name, no memory, 0 vCPUs, a topology that does not
// multiply to vcpus, a malformed UUID or MAC, a disk without a path, two
// disks with one target, a UEFI domain without a loader, a NIC without a source.
[[nodiscard]] Result<std::string> encode_domain(const DomainSpec& spec);

// A DomainSpec from libvirt XML. Only what DomainSpec models is read: disks
// of device 'disk' with a file or block source and interfaces of type
// network or bridge (other disks and interfaces are skipped, as are elements
// it does not know). Errc::invalid_argument naming what is wrong: not XML,
// root not <domain>, no name, a missing or malformed memory or vcpu value, an
// unknown domain type, machine, bus or NIC model, a disk without a source or
// target.
[[nodiscard]] Result<DomainSpec> decode_domain(std::string_view xml);

}  // namespace utsushi::virt
