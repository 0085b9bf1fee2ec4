#pragma once
// The target layout of a restore: where each partition of the image lands on
// a target disk of any size, and what must happen to its filesystem. Pure
// functions over the image's DiskPlan (nothing is read or written).
//
// The rule: one partition R (the last resizable one, or the one named)
// absorbs the difference in size; partitions after R keep their size and
// shift by the same amount (rounded to 1 MiB, so their alignment is kept);
// partitions before R stay where they are. A GPT's backup structures move to
// the end of the target (resize_disk). A larger target with no R keeps every
// partition; a smaller one must still hold them all.
//
// R's filesystem follows its partition:
//   ext2/3/4, NTFS   grow, or shrink in place (before the copy, on a staged
//                    copy of the partition);
//   XFS              grow; a smaller XFS is re-created at the new size and
//                    its files copied (XFS cannot shrink);
//   swap             re-made at the new size with its UUID and label;
//   LVM2 PV          grow only (pvresize, then the last LV and its filesystem).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/disk/disk_plan.h"
#include "utsushi/disk/partition_table.h"

namespace utsushi::v2p {

// Partition sizes and shifts are multiples of this (the modern install standard).
inline constexpr std::uint64_t k_alignment = 1u << 20;

// --grow auto|none|N
struct GrowChoice {
  enum class Kind { automatic, none, partition };
  Kind kind = Kind::automatic;
  unsigned number = 0;  // Kind::partition
  friend bool operator==(const GrowChoice&, const GrowChoice&) = default;
};
// "auto", "none", or a partition number ("2"; "p2" is accepted too).
[[nodiscard]] Result<GrowChoice> parse_grow(std::string_view text);

enum class FsAction {
  copy,         // written as it is in the image
  grow,         // the filesystem grown to its larger partition
  shrink,       // shrunk in place before the copy (ext2/3/4, NTFS)
  recreate,     // made anew at the new size and its files copied (XFS)
  remake_swap,  // mkswap at the new size with the same UUID and label
  grow_pv,      // LVM: pvresize, then the last LV and its filesystem grown
};
std::string_view fs_action_name(FsAction a) noexcept;

struct PartitionMove {
  unsigned number = 0;      // 0: a whole-disk filesystem (no partition table)
  std::string filesystem;   // as the image's used-block map names it
  std::string label;
  std::string uuid;
  std::uint64_t src_offset = 0;
  std::uint64_t src_length = 0;
  std::uint64_t dst_offset = 0;
  std::uint64_t dst_length = 0;
  std::uint64_t min_length = 0;  // estimated smallest partition that holds its content
  FsAction action = FsAction::copy;
};

struct LayoutPlan {
  disk::PartitionTable source;
  disk::PartitionTable target;          // encoded onto the target (check_layout passed)
  std::uint64_t source_size = 0;
  std::uint64_t target_size = 0;
  std::vector<PartitionMove> partitions;  // in the image's partition order
  std::optional<unsigned> resized;      // R's number, when one absorbs the difference
  std::uint64_t minimum_target_size = 0;  // the smallest target this image fits (estimate)
  std::vector<std::string> notes;       // e.g. why no partition was grown

  const PartitionMove* find(unsigned number) const;
};

// Whether v2p can resize a filesystem of this kind (names as fs_map.h).
bool resizable_filesystem(std::string_view filesystem) noexcept;

// The estimated smallest length a volume's content fits in: used bytes plus
// the filesystem's own overhead and slack; a swap area needs only its header;
// anything v2p cannot shrink needs its whole size.
std::uint64_t estimate_min_length(const disk::VolumeMap& volume);

// Plans the restore of `image` onto a target of `target_size` bytes.
// Errors: out_of_range, naming the smallest target that works, when the
// content does not fit (checked against estimate_min_length; the restore
// checks the filesystem's exact minimum before writing); not_found for a
// --grow partition the image lacks; not_supported when the named partition's
// filesystem cannot be resized or the shift would move MBR logical partitions.
[[nodiscard]] Result<LayoutPlan> plan_layout(const disk::DiskPlan& image, std::uint64_t target_size, GrowChoice grow);

}  // namespace utsushi::v2p
