#pragma once
// The restore target: a block device (a bare-metal disk, a loop device) or,
// for tests, an existing regular file of the disk's size. Every check that
// can refuse a target runs before anything is written:
//   - not a block device or regular file                -> invalid_argument
//   - mounted, held (LVM, MD, dm, loop), in use as swap  -> failed_precondition
//   - holding the running system's root filesystem       -> failed_precondition
//   - carrying a partition table, without --force        -> failed_precondition
// The device is then opened read-write with O_EXCL (imagefmt's raw driver).

#include <cstdint>
#include <memory>
#include <string>

#include "utsushi/common/error.h"
#include "utsushi/imagefmt/block_device.h"

namespace utsushi::v2p {

struct TargetInfo {
  std::string path;
  bool block_device = false;
  std::uint64_t size = 0;
  // Stable while the target is the same disk: a block device's major:minor,
  // size and serial (or WWID) from sysfs; a file's device, inode and size.
  std::string identity;
};

// Describes `path` (nothing is opened for writing). not_found for a missing
// file (a file target must exist at the disk's size: `truncate -s SIZE`).
[[nodiscard]] Result<TargetInfo> describe_target(const std::string& path);

// Refuses a target that is mounted, held, swap, or holds the running root.
[[nodiscard]] Result<void> check_target_free(const TargetInfo& target);

// The kind of partition table the target carries ("dos", "gpt") or "" when
// none: a restore over one needs --force.
[[nodiscard]] Result<std::string> existing_table(imagefmt::BlockDevice& target);

// Opens the target read-write (block devices O_EXCL, after check_target_free).
[[nodiscard]] Result<std::unique_ptr<imagefmt::BlockDevice>> open_target(const TargetInfo& target);

}  // namespace utsushi::v2p
