#pragma once
// Operations on a guest's network naming, console and services, for p2v
// convert (a VM), v2p (bare metal) and clone:
//
//   nic-names          configuration bound to a NIC name keeps working on a
//                      NIC with another name: each binding either pins the old
//                      name to the new NIC's MAC (a systemd .link file, or a
//                      udev rule where udev predates .link files; matches on
//                      the old driver or bus path dropped) or rebinds every
//                      configuration to the new name
//   serial-console     a getty on the serial console (systemd unit link or
//                      inittab), root login allowed there (securetty)
//   hardware-services  services tied to the old hardware (IPMI, vendor RAID
//                      and health agents, sensors) disabled, each reported

#include <memory>
#include <string>
#include <vector>

#include "utsushi/guest/operation.h"

namespace utsushi::guest {

struct NicBinding {
  std::string name;      // the name the guest's configuration uses ("ens3")
  std::string mac;       // the MAC of the NIC that will carry it
  std::string new_name;  // rebind to this name instead of pinning ("" = pin)
};

struct NicNamesParams {
  std::vector<NicBinding> nics;
};
std::unique_ptr<Operation> make_nic_names_op(NicNamesParams params);

// The file nic-names writes to pin `name` (systemd .link variant).
std::string pin_link_path(std::string_view name);

struct SerialConsoleParams {
  std::string tty = "ttyS0";
  unsigned speed = 115200;
};
std::unique_ptr<Operation> make_serial_console_op(SerialConsoleParams params);

struct HardwareServicesParams {
  std::vector<std::string> units = default_hardware_units();
  static std::vector<std::string> default_hardware_units();
};
std::unique_ptr<Operation> make_hardware_services_op(HardwareServicesParams params = {});

}  // namespace utsushi::guest
