// The list of preparation operations (see prepare.h).
#include <fmt/core.h>

#include "utsushi/guest/baremetal_ops.h"
#include "utsushi/guest/network_config.h"
#include "utsushi/v2p/prepare.h"

namespace utsushi::v2p {

Result<guest::OperationList> preparation_operations(const PrepareOptions& options, const guest::GuestOs& os) {
  (void)os;
  guest::OperationList ops;
  if (options.nic.kind == NicChoice::Kind::dhcp) {
    ops.push_back(guest::make_nic_dhcp_op());
  }
  ops.push_back(guest::make_vm_services_op());
  return ops;
}

}  // namespace utsushi::v2p
