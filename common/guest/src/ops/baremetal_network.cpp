// nic-dhcp (see baremetal_ops.h).
#include <fmt/core.h>

#include "utsushi/guest/baremetal_ops.h"

namespace utsushi::guest {
namespace {

constexpr const char* k_networkd_wants = "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service";

class NicDhcp final : public Operation {
 public:
  std::string_view name() const override { return "nic-dhcp"; }
  std::string_view description() const override {
    return "DHCP on any Ethernet NIC (systemd-networkd), for hardware whose NIC is not known in advance";
  }
  Applicability applies(const GuestOs& os) const override {
    if (!os.systemd) {
      return {false, "not a systemd guest (systemd-networkd is needed)"};
    }
    return {};
  }

  Result<void> run(Target& t) const override {
    Session& s = t.session();
    std::string unit;
    for (const char* dir : {"/lib/systemd/system", "/usr/lib/systemd/system"}) {
      if (UTSUSHI_TRY(s.exists(std::string(dir) + "/systemd-networkd.service"))) {
        unit = std::string(dir) + "/systemd-networkd.service";
        break;
      }
    }
    if (unit.empty()) {
      return fail(Errc::not_supported, "the guest has no systemd-networkd: --nic-dhcp cannot configure it");
    }
    UTSUSHI_TRY(t.write(k_dhcp_network_file, dhcp_network_file(), "DHCP on any Ethernet NIC"));
    UTSUSHI_TRY(t.symlink(unit, k_networkd_wants, "systemd-networkd enabled"));
    for (const NetworkConfig& c : t.os().network) {
      for (const std::string& n : c.interfaces) {
        t.note(c.path, fmt::format("{} still configures interface {} (a name of the VM's NIC); DHCP serves the "
                                   "machine's NICs instead", network_system_name(c.system), n));
      }
    }
    return {};
  }
};

}  // namespace

std::string dhcp_network_file() {
  return "# Written by utsushi v2p: DHCP on any Ethernet NIC of this machine.\n"
         "[Match]\n"
         "Name=en* eth*\n"
         "\n"
         "[Network]\n"
         "DHCP=yes\n"
         "\n"
         "[DHCPv4]\n"
         "ClientIdentifier=mac\n";
}

std::unique_ptr<Operation> make_nic_dhcp_op() { return std::make_unique<NicDhcp>(); }

}  // namespace utsushi::guest
