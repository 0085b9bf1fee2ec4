#pragma once
// The identity operations: what makes a copy of a guest a machine of its own
// (clone create runs them on every clone, each with its own parameters;
// clone sysprep runs them in place). In table order, `*` on by default:
//
//   machine-id *           a new /etc/machine-id (or systemd's first-boot
//                          state), the D-Bus machine id made to follow it
//   hostname *             /etc/hostname and /etc/hosts (when given)
//   ssh-hostkeys *         the given host keys replace every old one
//   random-seed *          new seeds for systemd and SysV urandom
//   udev-persistent-net *  persistent-net rules follow the new MACs (or go)
//   net-hwaddr *           the old MACs in network configuration become the new
//   net-address *          a static address or DHCP, in the system the guest uses
//   nm-connection-uuids *  every NetworkManager connection gets a new UUID
//   dhcp-client-state *    DHCP client leases removed
//   cloud-init-state *     cloud-init's instance state removed (a new instance)
//   logfiles *             logs and the journal removed (directories kept)
//   shell-history *        shell and tool histories of root and every user
//   tmp-files *            /tmp and /var/tmp emptied
//   authorized-keys *      SSH public keys added to root's authorized_keys
//   root-password *        root's password set from a crypt(3) hash
//   firstboot *            scripts installed to run once at first boot
//   run-scripts *          scripts run inside the guest now
//
// Operations whose parameters are empty (no hostname, no keys, no address...)
// do not apply and are skipped with that reason. Host keys, machine ids and
// hashes are made by the caller (clone reports them); contents the report
// would leak (private keys, password hashes) are summarised, never copied.

#include <optional>
#include <string>
#include <vector>

#include "utsushi/guest/network_address.h"
#include "utsushi/guest/operation.h"

namespace utsushi::guest {

struct HostKey {
  std::string type;         // "rsa", "ecdsa", "ed25519": /etc/ssh/ssh_host_TYPE_key
  std::string private_key;  // the key file's content (mode 0600 in the guest)
  std::string public_key;   // the .pub line
};

struct Script {
  std::string name;     // for file names and the report ("setup.sh")
  std::string content;  // run with /bin/sh
};

struct IdentityParams {
  // 32 hex digits; empty: the first-boot state (systemd >= 247:
  // "uninitialized"; older systemd: an empty file; no systemd: no file).
  std::string machine_id;
  std::string hostname;               // empty: not changed
  std::vector<HostKey> host_keys;     // empty: old keys removed, none written
  // The guest's NICs, in order: the MACs it had and the MACs it gets. When
  // `old_macs` is empty the old ones are taken from the udev rules or, failing
  // that, from the network configuration (in order of appearance).
  std::vector<std::string> old_macs;
  std::vector<std::string> macs;
  std::optional<AddressConfig> address;  // nullopt: not changed
  std::vector<std::string> authorized_keys;  // public key lines for root
  std::string root_password_hash;            // crypt(3) string; empty: not changed
  std::vector<Script> firstboot;
  std::vector<Script> run;
};

// The identity operations with `params`, in table order.
OperationList identity_operations(const IdentityParams& params);

// Where firstboot installs its scripts and unit.
inline constexpr const char* k_firstboot_dir = "/usr/local/lib/utsushi-firstboot";
inline constexpr const char* k_firstboot_unit = "/etc/systemd/system/utsushi-firstboot.service";

}  // namespace utsushi::guest
