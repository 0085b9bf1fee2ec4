#pragma once
// Running the identity operations (guest/identity_ops.h) on many guests in
// few appliance launches: a libguestfs launch costs ~16 s under TCG and grows
// with the number of disks, while the work per guest is a fraction of a
// second, so every guest's disks go into one launch (batched when there are
// more than a launch takes).
//
// Clones of one golden hold the same guest, so it is inspected once, in a
// separate read-only appliance over the golden's own disks that boots while
// the clones' appliance boots: inspecting the clones' appliance would read
// every clone (and their filesystems share UUIDs). Each clone is then
// mounted by the recorded layout (inspect.h: mount_layout). Different images
// (clone sysprep) are each inspected in the one launch.

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/guest/change.h"
#include "utsushi/guest/guest_os.h"
#include "utsushi/guest/identity_ops.h"
#include "utsushi/guest/session.h"

namespace utsushi::clone {

struct CustomiseJob {
  std::string name;                // names the guest in progress and errors
  std::vector<guest::DiskSpec> disks;  // writable, in the guest's order
  guest::IdentityParams params;
};

// What a guest's disks are made of, when all jobs hold the same guest.
struct SameGuest {
  std::vector<guest::DiskSpec> golden;  // the golden's disks (opened read-only)
};

struct CustomiseOptions {
  std::string operations;           // virt-sysprep's syntax ("a,b,-c", "defaults", "all"); "" = defaults
  std::optional<SameGuest> same;    // clones of one golden; nullopt: each job is inspected
  std::size_t max_disks = 0;        // disks per launch; 0: k_default_max_disks
  unsigned parallel = 1;            // launches at once
  guest::Mode mode = guest::Mode::apply;
  // Called just before a guest's operations run, to complete its parameters
  // with what was made meanwhile (host keys made while the appliance boots).
  // An error stops the run.
  std::function<Result<void>(std::size_t job, guest::IdentityParams& params)> prepare;
  // Called as each guest is done (from the launch's thread; calls are serialised).
  std::function<void(std::size_t job, const guest::Report& report)> on_guest;
  // Called with what is happening ("launching an appliance for 32 disks").
  std::function<void(const std::string& stage)> on_stage;
};

// libguestfs takes up to 255 disks (one is its own); measured under TCG, one
// launch of up to this many disks is faster than several smaller ones.
inline constexpr std::size_t k_default_max_disks = 254;

struct CustomiseResult {
  std::vector<guest::Report> reports;  // one per job, in order
  guest::GuestOs os;                   // the (first) guest as inspected
};

// Validates the operation selection (Errc::invalid_argument naming unknown
// ones) before anything is launched, then runs the selected identity
// operations on every job. Stops at the first failure: the error names the
// guest and operation; guests done before it are done.
[[nodiscard]] Result<CustomiseResult> customise(std::span<const CustomiseJob> jobs, const CustomiseOptions& options);

// The selection a spec makes from the identity operations (for checks and
// --list-operations).
[[nodiscard]] Result<std::vector<std::string>> selected_operations(const std::string& spec);

}  // namespace utsushi::clone
