// vm-services (see baremetal_ops.h).
#include <fmt/core.h>

#include <array>

#include "utsushi/guest/baremetal_ops.h"

namespace utsushi::guest {
namespace {

// Units of hypervisor guest tools, each started only by its virtual device
// (udev rule or ConditionVirtualization=).
constexpr std::array<const char*, 9> k_vm_units = {
    "qemu-guest-agent.service", "spice-vdagentd.service", "open-vm-tools.service", "vmtoolsd.service",
    "vgauth.service",           "hv-kvp-daemon.service",  "hv-vss-daemon.service", "hv-fcopy-daemon.service",
    "vboxadd-service.service",
};

class VmServices final : public Operation {
 public:
  std::string_view name() const override { return "vm-services"; }
  std::string_view description() const override {
    return "List hypervisor guest services (they start only on their virtual device and stay idle on hardware)";
  }
  Applicability applies(const GuestOs& os) const override {
    if (!os.systemd) {
      return {false, "not a systemd guest"};
    }
    return {};
  }

  Result<void> run(Target& t) const override {
    for (const char* unit : k_vm_units) {
      for (const char* dir : {"/lib/systemd/system/", "/usr/lib/systemd/system/"}) {
        if (UTSUSHI_TRY(t.session().exists(std::string(dir) + unit))) {
          t.note(unit, "a hypervisor guest service: left installed; it starts only on its virtual device, so it "
                       "stays idle on hardware");
          break;
        }
      }
    }
    return {};
  }
};

}  // namespace

std::unique_ptr<Operation> make_vm_services_op() { return std::make_unique<VmServices>(); }

}  // namespace utsushi::guest
