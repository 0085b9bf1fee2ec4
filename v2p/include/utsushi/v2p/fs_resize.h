#pragma once
// Resizing the filesystems of a restore with the host's own tools (e2fsprogs,
// xfsprogs, ntfs-3g, util-linux), as Clonezilla's ocs-resize-part does from
// its live medium: the libguestfs appliance is kept for what needs the guest's
// own system (boot preparation), so a restore that only copies and resizes
// costs no appliance launch.
//
// A partition is reached through a loop device over the target (or a staged
// file) at the partition's offset and length, so neither partition nodes nor
// udev are needed. Filesystems v2p cannot shrink in place are handled as the
// layout plan says:
//   shrink (ext2/3/4, NTFS): before the copy, the partition's used blocks are
//     staged into a sparse file in the state directory and shrunk there
//     (e2fsck -f + resize2fs; ntfsresize), after its exact minimum was
//     checked (resize2fs -P; ntfsresize --info): the image is never written;
//   grow: after the copy, on the target (resize2fs; xfs_growfs on a private
//     mount; ntfsresize);
//   remake_swap: mkswap with the image's UUID and label;
//   recreate (XFS): mkfs.xfs at the new size with the image's UUID and label,
//     then every file copied from the staged source with cp -a (owners, modes,
//     timestamps, hard links, xattrs and so ACLs and SELinux labels).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/imagefmt/block_device.h"
#include "utsushi/v2p/layout_plan.h"

namespace utsushi::v2p {

// A loop device over [offset, offset + length) of a file or block device,
// detached when destroyed.
class LoopDevice {
 public:
  enum class Access { read_only, read_write };
  [[nodiscard]] static Result<LoopDevice> attach(const std::string& backing, std::uint64_t offset,
                                                 std::uint64_t length, Access access);
  LoopDevice(LoopDevice&& other) noexcept : m_path(std::exchange(other.m_path, {})) {}
  LoopDevice& operator=(LoopDevice&&) = delete;
  ~LoopDevice();
  const std::string& path() const noexcept { return m_path; }

 private:
  explicit LoopDevice(std::string path) : m_path(std::move(path)) {}
  std::string m_path;
};

// What was done to one filesystem (for the report).
struct FsChange {
  unsigned partition = 0;
  std::string filesystem;
  FsAction action = FsAction::copy;
  std::uint64_t old_size = 0;
  std::uint64_t new_size = 0;
  std::string detail;  // the tool's own summary line
};

// Copies the used blocks of partition `move` from `image_view` (the image's
// used-blocks view) into a new sparse file `path` of the partition's size.
// Returns a device over the file (read-write: the shrink writes it).
[[nodiscard]] Result<std::unique_ptr<imagefmt::BlockDevice>> stage_partition(imagefmt::BlockDevice& image_view,
                                                                            const PartitionMove& move,
                                                                            const std::string& path);

// The smallest size the staged filesystem can take, in bytes (resize2fs -P,
// ntfsresize --info).
[[nodiscard]] Result<std::uint64_t> staged_minimum(const PartitionMove& move, const std::string& path);

// Shrinks the staged filesystem at `path` to move.dst_length. out_of_range
// naming the target size needed (plan.target_size plus the deficit) when its
// exact minimum is larger.
[[nodiscard]] Result<FsChange> shrink_staged(const LayoutPlan& plan, const PartitionMove& move,
                                             const std::string& path);

// After the copy: grows, re-makes or re-creates the filesystem of `move` on
// the target at `target_path` (closed by the caller). `staged_source` is the
// staged copy of the image's partition for recreate.
[[nodiscard]] Result<FsChange> finish_filesystem(const std::string& target_path, const PartitionMove& move,
                                                 const std::string& staged_source);

// The tools the actions of `plan` need that this host lacks ("" when none).
std::string missing_tools(const LayoutPlan& plan);

}  // namespace utsushi::v2p
