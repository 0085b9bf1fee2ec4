#pragma once
// Finding and mounting the operating system on a session's disks.
//
//   inspect(session)            libguestfs inspection: exactly one Linux root,
//                               else Errc::not_supported with the reason
//   mount_guest(session, os)    mounts its filesystems (parents first)
//   probe_guest(session, os)    with the guest mounted: kernels, initramfs
//                               tool, boot loader, firmware, network configs
//
// For many identical guests (clones) inspection is run once: layout_of()
// records the root and mounts by disk and partition index, and mount_layout()
// mounts another guest with the same layout on other disks of the same
// session without inspect_os (whose fstab lookups are ambiguous when clones
// share filesystem UUIDs): XFS gets `nouuid`, and LVM is filtered to that
// guest's disks.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/guest/guest_os.h"
#include "utsushi/guest/session.h"

namespace utsushi::guest {

enum class MountMode { read_only, read_write };

struct InspectOptions {
  // Only the operating system whose root is on this session disk (for a
  // session holding several guests, e.g. a golden image added first and its
  // clones after it). Without it the session must hold exactly one.
  std::optional<std::size_t> root_disk;
};

// Inspects the launched session. Errors: Errc::not_supported when no operating
// system is found ("no operating system found ..."), when it is not Linux
// ("... is windows, not Linux"), or when there are several and no root_disk
// says which.
[[nodiscard]] Result<GuestOs> inspect(Session& session, const InspectOptions& options = {});

// Mounts os.mounts in order. Everything already mounted is unmounted first.
[[nodiscard]] Result<void> mount_guest(Session& session, const GuestOs& os, MountMode mode);

// Fills the fields of `os` that need the mounted guest (see guest_os.h).
[[nodiscard]] Result<void> probe_guest(Session& session, GuestOs& os);

// A mount layout by position, valid for every guest made from the same disks.
struct LayoutEntry {
  std::string mountpoint;
  std::size_t disk = 0;    // index among the guest's own disks
  int partition = 0;       // 1-based; 0 for a whole disk or a logical volume
  std::string lv;          // "VG/LV" when on LVM, else ""
  std::string fstype;
};

struct MountLayout {
  std::vector<LayoutEntry> entries;  // parents first
};

// The layout of an inspected guest whose disks start at session disk `first_disk`.
[[nodiscard]] Result<MountLayout> layout_of(Session& session, const GuestOs& os, std::size_t first_disk = 0);

// Mounts a guest with `layout` whose disks are session disks
// [first_disk, first_disk + disk_count). Unmounts whatever was mounted and, when
// the layout uses LVM, restricts LVM to these disks first.
[[nodiscard]] Result<void> mount_layout(Session& session, const MountLayout& layout, std::size_t first_disk,
                                        std::size_t disk_count, MountMode mode);

}  // namespace utsushi::guest
