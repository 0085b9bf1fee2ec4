#pragma once
// Operations only v2p needs, for a system moved from a VM onto bare metal
// (the shared ones - initramfs, boot loader, NIC names, serial console - are
// in boot_ops.h and system_ops.h):
//
//   nic-dhcp     DHCP on any Ethernet NIC through systemd-networkd (a
//                .network file matching en* and eth*, networkd enabled), for
//                hardware whose NIC is not known in advance; configurations
//                bound to the VM's NIC names are left and listed (they match
//                no NIC of the machine)
//   vm-services  hypervisor services (guest agents, VMware/Hyper-V/VirtualBox
//                tools) listed: they start only on their virtual device, so
//                on hardware they stay idle; notes only, nothing changed

#include <memory>
#include <string>

#include "utsushi/guest/operation.h"

namespace utsushi::guest {

// The file nic-dhcp writes.
inline constexpr const char* k_dhcp_network_file = "/etc/systemd/network/80-utsushi-dhcp.network";

// Its content: DHCP (v4 and v6) on every NIC named en* or eth*, the DHCP
// client identified by MAC (as the fixtures' DHCP server expects).
std::string dhcp_network_file();

std::unique_ptr<Operation> make_nic_dhcp_op();
std::unique_ptr<Operation> make_vm_services_op();

}  // namespace utsushi::guest
