#pragma once
// The steps of clone create (create.h), private to the clone library:
// planning (plan.cpp), the domain definition and its metadata (domain.cpp),
// the host side (publish.cpp).
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/clone/create.h"
#include "utsushi/clone/golden.h"
#include "utsushi/guest/guest_os.h"
#include "utsushi/virt/connection.h"
#include "utsushi/virt/metadata.h"
#include "utsushi/virt/storage.h"

namespace utsushi::clone::detail {

// The metadata keys clone writes on its domains (virt/metadata.h).
inline constexpr const char* k_tool = "clone";
inline constexpr const char* k_state = "state";          // "incomplete" until its disks are in place, then "complete"
inline constexpr const char* k_pool = "pool";
inline constexpr const char* k_volumes = "volumes";      // the clone's volume names, '\n'-separated
inline constexpr const char* k_golden = "golden";
inline constexpr const char* k_golden_volumes = "golden-volumes";  // linked clones: their backing volumes, '\n'-separated
inline constexpr const char* k_hostname = "hostname";
inline constexpr const char* k_address = "address";
inline constexpr const char* k_machine_id = "machine-id";
inline constexpr const char* k_macs = "macs";            // ' '-separated
inline constexpr const char* k_host_key_prefix = "host-key-";  // + type: its fingerprint

// The marker volume beside an uploaded golden volume: present only once the
// upload is complete (an upload killed midway leaves the volume without it).
inline std::string golden_marker(const std::string& volume) { return volume + ".utsushi-complete"; }

struct HostState {
  std::string uri;
  std::shared_ptr<virt::Connection> conn;
  std::vector<virt::DomainInfo> domains;
  std::string pool_name;   // the pool clones go to
  std::string pool_dir;    // its directory when it must be made ("" = it must exist)
  std::optional<virt::PoolInfo> pool;  // once ensured (publish)
  std::vector<virt::VolumeInfo> golden_volumes;  // once uploaded (linked clones)
};

enum class Action { create, skip, redo };

struct PlannedClone {
  std::size_t index = 0;  // in the name list
  std::size_t host = 0;
  Action action = Action::create;
  CloneRecord record;
  std::vector<std::string> volumes;  // its volume names on the host
  guest::IdentityParams params;      // create/redo: its identity (host keys added later)
  std::optional<virt::Metadata> old; // redo: what the incomplete domain recorded
};

// Connects to every URI and reads its domains; chooses each host's pool.
[[nodiscard]] Result<std::vector<HostState>> connect_hosts(const CreateOptions& options);

// Decides what happens to each clone (see create.h step 1). Refuses names
// that exist and were not made by clone, and volumes in the way.
[[nodiscard]] Result<std::vector<PlannedClone>> plan_clones(const CreateOptions& options, const Golden& golden,
                                                            std::vector<HostState>& hosts);

// --- domain.cpp ---
// The metadata of a clone (state complete or incomplete).
virt::Metadata clone_metadata(const PlannedClone& clone, const HostState& host, const Golden& golden, CloneKind kind,
                              bool complete);
// A clone's record from its domain's metadata (an existing clone).
CloneRecord record_from_metadata(const virt::DomainInfo& domain, const std::string& uri);
// The clone's definition: the template domain's with a new identity, or a
// domain sized by the options for an image golden.
[[nodiscard]] Result<std::string> clone_domain_xml(const CreateOptions& options, const Golden& golden,
                                                   const guest::GuestOs& os, const PlannedClone& clone,
                                                   const std::vector<std::string>& disk_paths,
                                                   const virt::Metadata& metadata);
// How many NICs a clone of `golden` has with these options.
[[nodiscard]] Result<std::size_t> nic_count(const CreateOptions& options, const Golden& golden);

// --- publish.cpp ---
// The host's pool, found or made.
[[nodiscard]] Result<void> ensure_pool(HostState& host);
// The golden's disks in the host's pool, uploaded unless a complete upload is there.
[[nodiscard]] Result<void> ensure_golden(HostState& host, const Golden& golden, const ProgressFn& progress);
// Removes what an incomplete clone left (its volumes, then its domain).
[[nodiscard]] Result<void> remove_incomplete(HostState& host, const PlannedClone& clone);
// Defines the clone (incomplete), uploads its staged disks, marks it
// complete; on failure removes what it made. Returns its disk paths.
[[nodiscard]] Result<std::vector<std::string>> publish_clone(HostState& host, const CreateOptions& options,
                                                             const Golden& golden, const guest::GuestOs& os,
                                                             PlannedClone& clone,
                                                             const std::vector<std::string>& staged,
                                                             const ProgressFn& progress);

}  // namespace utsushi::clone::detail
