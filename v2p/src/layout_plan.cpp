#include "utsushi/v2p/layout_plan.h"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>

#include "utsushi/common/progress.h"
#include "utsushi/disk/gpt_format.h"
#include "utsushi/disk/layout_ops.h"

namespace utsushi::v2p {
namespace {

constexpr std::uint64_t k_mib = 1u << 20;

std::uint64_t align_down(std::uint64_t v, std::uint64_t a) { return v / a * a; }
std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return v > UINT64_MAX - a ? UINT64_MAX : (v + a - 1) / a * a; }

bool is_ext(std::string_view fs) { return fs == "ext2" || fs == "ext3" || fs == "ext4"; }

// Where partitions may end on a disk of `size` bytes with `t`'s kind of table.
std::uint64_t usable_end(const disk::PartitionTable& t, std::uint64_t size) {
  const std::uint64_t ss = t.sector_size;
  if (t.kind == disk::TableKind::gpt) {
    std::uint64_t sectors = size / ss;
    std::uint64_t array = disk::gpt::entries_sectors(t.gpt.entry_count, t.gpt.entry_size, t.sector_size);
    return sectors < array + 2 ? 0 : (sectors - array - 1) * ss;
  }
  return size / ss * ss;
}

std::unexpected<Error> too_small(std::uint64_t target_size, std::uint64_t needed, const std::string& why) {
  return fail(Errc::out_of_range, fmt::format("the target ({} bytes, {}) is too small: it needs at least {} bytes ({}); {}",
                                              target_size, format_bytes(target_size), needed, format_bytes(needed), why));
}

FsAction action_for(const PartitionMove& m, bool grows) {
  if (m.filesystem == "swap") {
    return FsAction::remake_swap;
  }
  if (m.filesystem == "LVM2_member") {
    return FsAction::grow_pv;
  }
  if (m.filesystem == "xfs" && !grows) {
    return FsAction::recreate;
  }
  return grows ? FsAction::grow : FsAction::shrink;
}

// R: the partition that absorbs the size difference (nullopt: none).
[[nodiscard]] Result<std::optional<std::size_t>> choose_resized(const std::vector<PartitionMove>& moves, GrowChoice grow,
                                                               std::vector<std::string>& notes) {
  if (grow.kind == GrowChoice::Kind::none) {
    return std::optional<std::size_t>();
  }
  if (grow.kind == GrowChoice::Kind::partition) {
    for (std::size_t i = 0; i < moves.size(); ++i) {
      if (moves[i].number == grow.number) {
        if (!resizable_filesystem(moves[i].filesystem)) {
          return fail(Errc::not_supported, fmt::format("partition {} holds {}, which v2p cannot resize (ext2/3/4, XFS, "
                                                       "NTFS, swap and LVM physical volumes can be)",
                                                       grow.number, moves[i].filesystem));
        }
        return std::optional<std::size_t>(i);
      }
    }
    return fail(Errc::not_found, fmt::format("--grow {}: the image has no partition {}", grow.number, grow.number));
  }
  std::optional<std::size_t> last;
  for (std::size_t i = 0; i < moves.size(); ++i) {
    if (resizable_filesystem(moves[i].filesystem) && (!last || moves[i].src_offset > moves[*last].src_offset)) {
      last = i;
    }
  }
  if (!last) {
    notes.push_back("no partition holds a filesystem v2p can resize: partitions keep their sizes");
  }
  return last;
}

// The whole-disk filesystem case: the filesystem is the disk.
[[nodiscard]] Result<LayoutPlan> plan_whole_disk(LayoutPlan lp, GrowChoice grow) {
  PartitionMove& m = lp.partitions.front();
  const bool resize = grow.kind != GrowChoice::Kind::none && resizable_filesystem(m.filesystem) &&
                      m.filesystem != "LVM2_member";
  m.dst_length = resize ? lp.target_size : m.src_length;
  lp.minimum_target_size = resize ? m.min_length : m.src_length;
  if (lp.target_size < lp.minimum_target_size) {
    return too_small(lp.target_size, lp.minimum_target_size,
                     fmt::format("the whole-disk {} holds about {}", m.filesystem, format_bytes(m.min_length)));
  }
  if (resize && m.dst_length != m.src_length) {
    m.action = action_for(m, m.dst_length > m.src_length);
    lp.resized = 0;
  }
  lp.target.disk_size = lp.target_size;
  return lp;
}

}  // namespace

Result<GrowChoice> parse_grow(std::string_view text) {
  if (text == "auto") {
    return GrowChoice{GrowChoice::Kind::automatic, 0};
  }
  if (text == "none") {
    return GrowChoice{GrowChoice::Kind::none, 0};
  }
  std::string_view digits = text.starts_with("p") ? text.substr(1) : text;
  unsigned n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n == 0) {
    return fail(Errc::invalid_argument, fmt::format("--grow takes auto, none or a partition number, not '{}'", text));
  }
  return GrowChoice{GrowChoice::Kind::partition, n};
}

std::string_view fs_action_name(FsAction a) noexcept {
  switch (a) {
    case FsAction::copy: return "copy";
    case FsAction::grow: return "grow";
    case FsAction::shrink: return "shrink";
    case FsAction::recreate: return "recreate";
    case FsAction::remake_swap: return "remake-swap";
    case FsAction::grow_pv: return "grow-pv";
  }
  return "?";
}

const PartitionMove* LayoutPlan::find(unsigned number) const {
  for (const PartitionMove& m : partitions) {
    if (m.number == number) {
      return &m;
    }
  }
  return nullptr;
}

bool resizable_filesystem(std::string_view fs) noexcept {
  return is_ext(fs) || fs == "xfs" || fs == "ntfs" || fs == "swap" || fs == "LVM2_member";
}

std::uint64_t estimate_min_length(const disk::VolumeMap& v) {
  if (v.full_copy || !resizable_filesystem(v.filesystem) || v.filesystem == "LVM2_member") {
    return v.size;
  }
  if (v.filesystem == "swap") {
    return std::min(v.size, k_mib);
  }
  std::uint64_t used = std::max(v.used.total(), v.fs_used_bytes);
  // resize2fs and ntfsresize need room for the metadata of the smaller
  // filesystem; mkfs.xfs (xfsprogs >= 5.19) refuses anything under 300 MiB.
  std::uint64_t est = used + used / 10 + 32 * k_mib;
  if (v.filesystem == "xfs") {
    est = std::max(est + 64 * k_mib, 300 * k_mib);
  }
  return std::min(v.size, align_up(est, k_mib));
}

Result<LayoutPlan> plan_layout(const disk::DiskPlan& image, std::uint64_t target_size, GrowChoice grow) {
  LayoutPlan lp;
  lp.source = image.table;
  lp.target = image.table;
  lp.source_size = image.size;
  lp.target_size = target_size;
  const disk::PartitionTable& t = image.table;
  if (t.kind == disk::TableKind::none) {
    const disk::VolumeMap* v = image.volumes.empty() ? nullptr : &image.volumes.front();
    PartitionMove m{0, v ? v->filesystem : "unknown", v ? v->label : "", v ? v->uuid : "", 0, image.size, 0,
                    image.size, v ? estimate_min_length(*v) : image.size, FsAction::copy};
    lp.partitions.push_back(m);
    return plan_whole_disk(std::move(lp), grow);
  }
  for (std::size_t i = 0; i < t.partitions.size(); ++i) {
    const disk::Partition& p = t.partitions[i];
    const disk::VolumeMap* v = i < image.volumes.size() ? &image.volumes[i] : nullptr;
    lp.partitions.push_back({p.number, v ? v->filesystem : "unknown", v ? v->label : "", v ? v->uuid : "", p.offset,
                             p.length, p.offset, p.length, v ? estimate_min_length(*v) : p.length, FsAction::copy});
  }
  std::optional<std::size_t> r = UTSUSHI_TRY(choose_resized(lp.partitions, grow, lp.notes));
  if (!r) {
    lp.minimum_target_size = disk::minimum_disk_size(t);
    lp.target = UTSUSHI_TRY(disk::resize_disk(t, target_size));
    return lp;
  }
  PartitionMove& rm = lp.partitions[*r];
  const std::uint64_t new_usable = usable_end(t, target_size);
  // Partitions after R shift together by a whole number of MiB.
  std::vector<std::size_t> after;
  std::uint64_t after_end = 0;
  for (std::size_t i = 0; i < lp.partitions.size(); ++i) {
    if (lp.partitions[i].src_offset > rm.src_offset) {
      after.push_back(i);
      after_end = std::max(after_end, lp.partitions[i].src_offset + lp.partitions[i].src_length);
    }
  }
  std::sort(after.begin(), after.end(),
            [&](std::size_t a, std::size_t b) { return lp.partitions[a].src_offset < lp.partitions[b].src_offset; });
  std::int64_t shift = 0;
  std::uint64_t r_end = new_usable;
  if (!after.empty()) {
    if (t.extended && t.extended->offset > rm.src_offset) {
      return fail(Errc::not_supported, fmt::format("resizing partition {} would move the MBR extended partition "
                                                   "after it; name a logical partition with --grow, or --grow none",
                                                   rm.number));
    }
    shift = new_usable >= after_end ? static_cast<std::int64_t>(align_down(new_usable - after_end, k_mib))
                                    : -static_cast<std::int64_t>(align_up(after_end - new_usable, k_mib));
    r_end = static_cast<std::uint64_t>(static_cast<std::int64_t>(lp.partitions[after.front()].src_offset) + shift);
  }
  const std::uint64_t ss = t.sector_size;
  std::uint64_t new_len = r_end > rm.src_offset ? align_down(r_end - rm.src_offset, ss) : 0;
  if (new_len > rm.src_length && new_len - rm.src_length < k_mib) {
    new_len = rm.src_length;  // less than a MiB to gain: not worth a resize (growpart's fudge)
  }
  // The smallest target: R at its minimum, everything else as it is.
  std::uint64_t spare = rm.src_length > rm.min_length ? rm.src_length - rm.min_length : 0;
  lp.minimum_target_size = disk::minimum_disk_size(t) - align_down(spare, k_mib);
  if (new_len < rm.min_length) {
    return too_small(target_size, lp.minimum_target_size,
                     fmt::format("partition {} ({}) holds about {} of data", rm.number, rm.filesystem,
                                 format_bytes(rm.min_length)));
  }
  if (new_len < rm.src_length && rm.filesystem == "LVM2_member") {
    return fail(Errc::not_supported, fmt::format("partition {} is an LVM physical volume, which v2p cannot shrink "
                                                 "(the target needs at least {} bytes)",
                                                 rm.number, disk::minimum_disk_size(t)));
  }
  disk::PartitionTable nt = t;
  auto move_all = [&](bool forward) -> Result<void> {
    for (std::size_t k = 0; k < after.size(); ++k) {
      PartitionMove& m = lp.partitions[after[forward ? k : after.size() - 1 - k]];
      m.dst_offset = static_cast<std::uint64_t>(static_cast<std::int64_t>(m.src_offset) + shift);
      nt = UTSUSHI_TRY(disk::move_partition(nt, m.number, m.dst_offset)).table;
    }
    return {};
  };
  if (new_len < rm.src_length) {
    nt = UTSUSHI_TRY(disk::resize_partition(nt, rm.number, new_len));
  }
  if (shift < 0) {
    UTSUSHI_TRY(move_all(true));
  }
  nt = UTSUSHI_TRY(disk::resize_disk(nt, target_size));
  if (shift > 0) {
    UTSUSHI_TRY(move_all(false));
  }
  if (new_len > rm.src_length) {
    nt = UTSUSHI_TRY(disk::resize_partition(nt, rm.number, new_len));
  }
  rm.dst_length = new_len;
  if (new_len != rm.src_length) {
    rm.action = action_for(rm, new_len > rm.src_length);
    lp.resized = rm.number;
  }
  lp.target = std::move(nt);
  return lp;
}

}  // namespace utsushi::v2p
