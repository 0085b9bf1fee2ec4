#pragma once
// clone create: customised clones of a golden, defined in libvirt.
//
//  1. read-only checks: the golden (golden.h) is opened and not in use; the
//     names, addresses and options are valid; every host is reached and its
//     domains listed: a name that exists and was not made by clone is refused,
//     clones that exist complete are skipped, clones left incomplete by a
//     killed run are redone; MACs are drawn unique on every host;
//  2. staging (staging.h): each new clone's disks made locally, linked
//     (a qcow2 overlay whose backing file is named as the golden's volume on
//     its host) or full (the golden's used data, on every core);
//  3. customisation (customise.h): every new clone's identity in one
//     appliance launch, with host keys made meanwhile;
//  4. publishing, clone by clone: the host's pool found or made, the golden
//     uploaded once per host (linked clones), then for each clone its domain
//     defined marked incomplete, its disks uploaded, and the mark replaced by
//     complete. A failure there removes that clone's disks and domain: clones
//     before it are complete, nothing is half-made; a kill leaves at most one
//     incomplete clone, which the next run redoes;
//  5. --start: the clones started a bounded number at a time.
//
// Nothing is written on any host before step 4, so every refusal and every
// failure of steps 1-3 leaves the hosts as they were.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/common/progress.h"
#include "utsushi/guest/change.h"
#include "utsushi/guest/identity_ops.h"
#include "utsushi/virt/accel.h"

namespace utsushi::clone {

enum class CloneKind { linked, full };

struct CreateOptions {
  std::string golden;                      // a path or domain:NAME
  std::vector<std::string> names;          // or:
  unsigned count = 0;                      //   count names from the pattern
  std::string name_pattern = "clone-{n:02}";
  CloneKind kind = CloneKind::linked;
  std::vector<std::string> uris{"qemu:///system"};  // clones spread over them in turn
  std::string pool_dir;                    // the pool's directory on every host; "" = the pool "default"
  std::string hostname_pattern = "{name}";
  std::optional<std::string> ip;           // the first address, "10.0.0.10/24"
  std::string gateway;
  std::vector<std::string> dns;
  bool dhcp = false;
  std::vector<std::string> ssh_key_files;  // public keys for root
  std::string root_password_file;
  std::vector<std::string> run_scripts;    // files
  std::vector<std::string> firstboot_scripts;
  std::optional<std::uint64_t> memory_bytes;  // image goldens: 1 GiB; domain goldens: the template's
  std::optional<unsigned> cpus;
  std::string network = "network:default";    // image goldens: network:NAME, bridge:BR, user or none
  std::string operations;                  // identity operations (virt-sysprep syntax); "" = defaults
  bool firstboot_machine_id = false;       // systemd's first-boot state instead of a new id
  bool start = false;
  unsigned start_batch = 4;                // clones started at once
  std::chrono::seconds start_interval{10};  // between batches
  std::string work_dir = "/var/tmp/utsushi-clone";
  std::size_t max_disks = 0;               // disks per appliance launch (0: customise.h's default)
  unsigned appliances = 1;                 // launches at once
  std::optional<virt::Accel> accel;
};

// One clone, as the report gives it.
struct CloneRecord {
  std::string name;
  std::string uri;
  std::string uuid;
  std::vector<std::string> macs;
  std::string hostname;
  std::string address;                           // "10.0.0.10/24", "dhcp" or "" (unchanged)
  std::string machine_id;                        // "" when left to first boot
  std::map<std::string, std::string> host_keys;  // type -> SHA256 fingerprint
  std::vector<std::string> disks;                // volume paths on its host
  std::string state;                             // "created", "existing"
  bool started = false;
  std::optional<guest::Report> customisation;    // created clones
};

struct CreateReport {
  std::string golden;
  std::vector<CloneRecord> clones;
  std::map<std::string, double> seconds;  // phase -> wall seconds ("customise", "publish", "total", ...)
};

// Progress: per clone ("staged", "customised", "defined", "complete",
// "skipped: exists", "started") and per phase; bytes of uploads.
struct CreateEvents {
  std::function<void(const std::string& clone, const std::string& what)> on_clone;
  std::function<void(const std::string& what)> on_phase;
  ProgressFn upload_progress;
};

[[nodiscard]] Result<CreateReport> create_clones(const CreateOptions& options, const CreateEvents& events = {});

}  // namespace utsushi::clone
