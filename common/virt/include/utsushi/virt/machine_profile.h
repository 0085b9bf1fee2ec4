#pragma once
// The machine profile: what a capture recorded about the machine it copied
// (p2v writes it as JSON beside the images; p2v convert and clone size
// domains from it). The document, version 2 (version 1 reads too):
//
//   {"type": "utsushi-hardware-profile", "version": 2,
//    "source": "running-machine" | "images",
//    "hostname": "...",                                   (running-machine)
//    "cpus": {"count": 8, "cores": 4, "model": "...", "vendor": "GenuineIntel",
//             "flags": ["aes", "lm", ...]} | null,
//    "memory": {"bytes": 8254390272} | null,
//    "nics": [{"name": "enp0s25", "mac": "00:11:22:33:44:55", "driver": "e1000e" | null,
//              "bus-path": "0000:00:19.0", "addresses": ["192.0.2.10/24", ...]}] | null,
//    "firmware": "bios" | "uefi" | "unknown",
//    "firmware-evidence": "/sys/firmware/efi exists",      (version 2)
//    "dmi": {"vendor": "...", "product": "..."},           (running-machine)
//    "disks": [{"source": "/dev/sda", "image": "out/sda.qcow2", "size": 512110190592,
//               "partition-table": "gpt", "model": "...", "rotational": false}]}
//
// Decoding is strict: a wrong type or a missing required field is
// Errc::invalid_argument naming the field; a newer version is
// Errc::not_supported. Unknown fields are ignored.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/virt/domain_spec.h"

namespace utsushi::virt {

inline constexpr std::string_view k_profile_type = "utsushi-hardware-profile";
inline constexpr int k_profile_version = 2;

enum class ProfileSource { host, images };  // "running-machine", "images"
enum class FirmwareKind { bios, uefi, unknown };

struct CpuInfo {
  unsigned count = 0;   // logical CPUs
  unsigned cores = 0;   // physical cores (all sockets)
  std::string model;
  std::string vendor;
  std::vector<std::string> flags;  // the few that matter for a guest: vmx, svm, lm, aes, avx2, hypervisor
  bool operator==(const CpuInfo&) const = default;
};

struct NicInfo {
  std::string name;
  std::string mac;
  std::optional<std::string> driver;
  std::string bus_path;
  std::vector<std::string> addresses;  // "ADDRESS/PREFIX", IPv4 and IPv6, as configured when captured
  bool operator==(const NicInfo&) const = default;
};

struct DiskInfo {
  std::string source;
  std::string image;
  std::uint64_t size = 0;
  std::string partition_table;  // as p2v names it: "gpt", "dos", "none"
  std::optional<std::string> model;
  std::optional<bool> rotational;
  bool operator==(const DiskInfo&) const = default;
};

struct DmiInfo {
  std::string vendor;
  std::string product;
  bool operator==(const DmiInfo&) const = default;
};

// A profile of either version, as this library writes it (version 2).
struct MachineProfile {
  ProfileSource source = ProfileSource::images;
  std::string hostname;
  std::optional<CpuInfo> cpus;
  std::optional<std::uint64_t> memory_bytes;
  std::optional<std::vector<NicInfo>> nics;  // nullopt: not known (images)
  FirmwareKind firmware = FirmwareKind::unknown;
  std::string firmware_evidence;  // how the firmware was decided
  std::optional<DmiInfo> dmi;
  std::vector<DiskInfo> disks;
  bool operator==(const MachineProfile&) const = default;
};

std::string_view name_of(FirmwareKind f) noexcept;  // "bios", "uefi", "unknown"

// The JSON document (two-space indent, newline-terminated).
std::string encode_profile(const MachineProfile& profile);
[[nodiscard]] Result<MachineProfile> decode_profile(std::string_view json_text);

// Reads and decodes a profile file; writes one atomically (AtomicFile).
[[nodiscard]] Result<MachineProfile> read_profile(const std::string& path);
[[nodiscard]] Result<void> write_profile(const MachineProfile& profile, const std::string& path);

// How from_profile() sizes a domain; fields left empty come from the profile.
struct ProfileDomainOptions {
  std::string name;                      // required
  std::string uuid;                      // empty: libvirt makes one up
  // The accelerator (accel.h) the CLI forced (--accel); nullopt: UTSUSHI_ACCEL
  // or the cached KVM probe decide. kvm gives <domain type='kvm'>, tcg 'qemu'.
  std::optional<Accel> accel;
  std::vector<DiskSpec> disks;           // the converted images, in boot order
  NicKind nic_kind = NicKind::network;
  std::string nic_source = "default";    // network or bridge
  NicModel nic_model = NicModel::virtio;
  std::optional<Firmware> firmware;      // nullopt: the profile's (bios when unknown)
  UefiFirmware uefi = debian_ovmf();
  std::optional<unsigned> vcpus;         // nullopt: the profile's logical CPUs (1 when unknown)
  std::optional<std::uint64_t> memory_bytes;  // nullopt: the profile's, rounded up to MiB (1 GiB when unknown)
  std::optional<Metadata> metadata;
};

// A q35 domain sized like the captured machine, of the type the accelerator
// choice calls for (choose_accel(options.accel), which may run the probe): its CPU count and topology
// (sockets x cores x threads when they divide evenly), memory, one NIC per
// profile NIC carrying that NIC's MAC (one NIC without a MAC when the
// profile knows none), its firmware, the first disk booting first, a serial
// console, a virtio RNG and a balloon. Errc::invalid_argument when the
// options lack a name or a disk, or a profile MAC is malformed; the probe's
// error when it cannot decide.
[[nodiscard]] Result<DomainSpec> from_profile(const MachineProfile& profile, const ProfileDomainOptions& options);

}  // namespace utsushi::virt
