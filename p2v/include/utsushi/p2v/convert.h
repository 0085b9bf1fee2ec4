#pragma once
// p2v convert: make a captured Linux machine boot as a KVM guest.
//
// All the machine's disks go into ONE libguestfs launch (utsushi_guest). The
// guest is inspected (one Linux OS, else Errc::not_supported with the reason)
// and converted by a list of guest operations (boot_ops.h, system_ops.h):
// stale caches removed, device paths -> UUID=, absent disks' fstab entries
// nofail, NIC names pinned to the VM NICs' MACs, hardware services disabled,
// a serial getty, the initramfs rebuilt by the guest's own tool with the
// virtio drivers (checked), GRUB's configuration regenerated (checked), the
// BIOS boot code or UEFI fallback path present. The report lists every change.
//
// Outputs: without in-place mode the captured images are never written. Each
// converted disk is a new qcow2 in the output directory: by default a thin
// overlay whose backing file is the captured image (absolute path; the
// captured image must stay where it is), or a full standalone copy. Outputs
// are made under temporary names and only a successful conversion may
// commit() them; a Conversion destroyed uncommitted removes them, and
// discard() removes committed ones (when defining the domain fails).
// In-place mode writes the captured images themselves (a failure midway
// leaves them partly converted). A dry run adds the images read-only, plans
// every change and writes nothing.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/common/progress.h"
#include "utsushi/guest/change.h"
#include "utsushi/guest/guest_os.h"
#include "utsushi/virt/domain_spec.h"
#include "utsushi/virt/machine_profile.h"

namespace utsushi::p2v {

// Where the converted disks go (see the file comment).
enum class OutputMode {
  overlay,   // new qcow2 overlays over the captured images
  copy,      // new standalone qcow2 copies
  in_place,  // the captured images themselves
};

struct ConvertOptions {
  std::vector<std::string> images;  // the machine's disks, in its disk order
  // The capture's hardware profile: the physical NICs (their names are what
  // the guest's configuration binds to; their MACs go to the VM), CPUs,
  // memory, hostname. nullopt: images only (one VM NIC per interface name the
  // guest's configuration binds, with a new MAC).
  std::optional<virt::MachineProfile> profile;
  std::string name;                 // "" -> the profile's hostname, the guest's, the first image's name
  std::string output_dir;           // required unless in_place or dry_run
  OutputMode output = OutputMode::overlay;
  bool replace_outputs = false;     // overwrite converted images already in output_dir
  virt::DiskBus bus = virt::DiskBus::virtio;  // ide is refused
  virt::NicModel nic = virt::NicModel::virtio;
  guest::Firmware firmware = guest::Firmware::unknown;  // unknown: the guest's own
  bool dry_run = false;
  unsigned threads = 0;             // copying (OutputMode::copy)
  ProgressFn progress;              // copying, and libguestfs's long calls
};

struct ConvertedDisk {
  std::string source;  // the captured image
  std::string path;    // the converted image (the source itself in place)
  std::string format;  // "qcow2", or the source's in place
};

struct VmNic {
  std::string mac;
  std::string guest_name;  // the name the guest's configuration gives it ("" when none)
};

class Conversion {
 public:
  std::string name;
  guest::GuestOs os;
  guest::Report report;
  std::vector<ConvertedDisk> disks;
  std::vector<VmNic> nics;
  guest::Firmware firmware = guest::Firmware::bios;
  virt::DiskBus bus = virt::DiskBus::virtio;
  virt::NicModel nic = virt::NicModel::virtio;
  virt::MachineProfile profile;  // the given one, or one made from the images
  double seconds = 0;

  Conversion() = default;
  Conversion(Conversion&&) noexcept = default;
  Conversion& operator=(Conversion&&) = delete;
  ~Conversion();  // removes outputs not committed

  // Renames the converted images into place (fsync'd). Errc::failed_precondition
  // when one exists and replacing was not asked for.
  [[nodiscard]] Result<void> commit();
  // Removes the converted images, committed or not (never the captured ones).
  void discard() noexcept;

  struct Pending {
    std::string temp;
    std::string final_path;
  };
  std::vector<Pending> pending;  // (set by convert())
  bool replace = false;
  bool committed = false;
};

// Converts; see the file comment. Errors: not_supported (no OS, not Linux, no
// initramfs tool, a kernel without the drivers), invalid_argument (options,
// an OVA image), failed_precondition (an output exists), io_error (a guest
// tool failed or the result failed its check), cancelled.
[[nodiscard]] Result<Conversion> convert(const ConvertOptions& options);

// The domain's name as far as it is known before inspection: the given name,
// else the profile's hostname, else "" (the guest's hostname decides).
std::string name_before_inspection(const ConvertOptions& options);

// The machine-readable result: name, OS, firmware, disks, NICs and the change report.
nlohmann::json to_json(const Conversion& conversion);

// The libvirt domain of a conversion: q35 sized like the machine (the
// profile's CPUs and memory), one NIC per VM NIC with its MAC, the converted
// disks on the chosen bus (the first boots), OVMF with the domain's own NVRAM
// copy for UEFI, a serial console; marked as made by p2v (metadata.h).
struct DomainOptions {
  std::string uri = "qemu:///system";
  virt::NicKind nic_kind = virt::NicKind::network;
  std::string nic_source = "default";  // network name or bridge
  bool replace = false;                // an existing domain of that name is replaced
  bool start = false;
  std::optional<virt::Accel> accel;    // --accel; nullopt: the probe decides kvm or qemu
};

struct DefinedDomain {
  std::string uri;
  std::string name;
  std::string uuid;
  std::string xml;
  bool started = false;
};

// Errc::failed_precondition when a domain of that name exists and replacing was not asked.
[[nodiscard]] Result<void> check_domain_name(const std::string& name, const DomainOptions& options);
// The domain's XML (pure apart from the accelerator choice).
[[nodiscard]] Result<std::string> domain_xml(const Conversion& conversion, const DomainOptions& options);
// Defines (and starts) it. A failure leaves no domain defined by this call.
[[nodiscard]] Result<DefinedDomain> define_domain(const Conversion& conversion, const DomainOptions& options);

}  // namespace utsushi::p2v
