#include "utsushi/disk/layout_ops.h"

#include <fmt/core.h>

#include <algorithm>
#include <set>

#include "utsushi/disk/gpt_format.h"
#include "utsushi/disk/mbr_format.h"

namespace utsushi::disk {
namespace {

struct Span {
  std::uint64_t offset, end;
  std::string what;
};

std::unexpected<Error> inconsistent(std::string message) {
  return fail(Errc::invalid_argument, "partition table: " + std::move(message));
}

std::unexpected<Error> too_small(const PartitionTable& t, std::string_view what) {
  return fail(Errc::out_of_range, fmt::format("{} does not fit a disk of {} bytes: the layout needs at least {} bytes",
                                              what, t.disk_size, minimum_disk_size(t)));
}

[[nodiscard]] Result<void> check_partition_geometry(const PartitionTable& t, const Partition& p) {
  const std::uint64_t ss = t.sector_size;
  std::uint64_t end = 0;
  if (p.length == 0 || p.offset % ss != 0 || p.length % ss != 0 || __builtin_add_overflow(p.offset, p.length, &end)) {
    return inconsistent(fmt::format("partition {} (offset {}, {} bytes) is empty or not aligned to {}-byte sectors",
                                    p.number, p.offset, p.length, ss));
  }
  if (end > t.disk_size) {
    return too_small(t, fmt::format("partition {} (ending at byte {})", p.number, end));
  }
  return {};
}

[[nodiscard]] Result<void> check_no_overlap(std::vector<Span> spans) {
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.offset < b.offset; });
  for (std::size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].offset < spans[i - 1].end) {
      return inconsistent(spans[i - 1].what + " and " + spans[i].what + " overlap");
    }
  }
  return {};
}

[[nodiscard]] Result<void> check_mbr(const PartitionTable& t) {
  const std::uint64_t ss = t.sector_size;
  auto fits_32 = [&](std::uint64_t offset, std::uint64_t length) {
    return offset / ss <= mbr::k_max_lba && length / ss <= mbr::k_max_lba;
  };
  std::vector<Span> primaries{{0, ss, "the MBR"}};
  std::vector<Span> in_extended;
  const MbrExtended* ext = t.extended ? &*t.extended : nullptr;
  if (ext) {
    if (ext->slot < 1 || ext->slot > 4 || !mbr::is_extended_type(ext->type) || ext->length < ss ||
        ext->offset % ss != 0 || ext->length % ss != 0 || !fits_32(ext->offset, ext->length)) {
      return inconsistent("the extended partition's slot, type or geometry is invalid");
    }
    if (ext->offset > t.disk_size || ext->length > t.disk_size - ext->offset) {
      return too_small(t, fmt::format("the extended partition (ending at byte {})", ext->end()));
    }
    primaries.push_back({ext->offset, ext->end(), "the extended partition"});
  }
  unsigned next_logical = 5;
  for (const Partition& p : t.partitions) {
    UTSUSHI_TRY(check_partition_geometry(t, p));
    if (!fits_32(p.offset, p.length)) {
      return inconsistent(fmt::format("partition {} lies beyond the 2 TiB an MBR can address", p.number));
    }
    if (p.number >= 1 && p.number <= 4) {
      if (ext && ext->slot == p.number) {
        return inconsistent(fmt::format("partition {} uses the extended partition's slot", p.number));
      }
      primaries.push_back({p.offset, p.end(), fmt::format("partition {}", p.number)});
      continue;
    }
    if (!ext || p.number != next_logical++) {
      return inconsistent(fmt::format("partition {} is not a primary (1-4) nor the next logical partition", p.number));
    }
    const bool first = p.number == 5;
    if (p.ebr_offset % ss != 0 || p.ebr_offset >= p.offset || (first && p.ebr_offset != ext->offset) ||
        p.ebr_offset < ext->offset || p.end() > ext->end()) {
      return inconsistent(fmt::format("logical partition {} or its EBR lies outside the extended partition", p.number));
    }
    in_extended.push_back({p.offset, p.end(), fmt::format("partition {}", p.number)});
    in_extended.push_back({p.ebr_offset, p.ebr_offset + ss, fmt::format("the EBR of partition {}", p.number)});
  }
  if (ext && next_logical == 5) {
    in_extended.push_back({ext->offset, ext->offset + ss, "the first EBR"});
  }
  UTSUSHI_TRY(check_no_overlap(std::move(primaries)));
  return check_no_overlap(std::move(in_extended));
}

[[nodiscard]] Result<void> check_gpt(const PartitionTable& t) {
  const GptGeometry& g = t.gpt;
  const std::uint64_t ss = t.sector_size;
  if (g.entry_size < gpt::k_min_entry_size || (g.entry_size & (g.entry_size - 1)) != 0 ||
      gpt::entries_bytes(g.entry_count, g.entry_size) > gpt::k_max_entries_bytes) {
    return inconsistent("bad GPT entry array geometry");
  }
  const std::uint64_t array = gpt::entries_sectors(g.entry_count, g.entry_size, t.sector_size);
  const std::uint64_t sectors = t.disk_size / ss;
  // Order on disk: MBR, header, array ... usable ... array, header; each
  // comparison below is overflow-free because the previous one bounds it.
  if (g.entries_lba < 2 || g.entries_lba > g.first_usable_lba || array > g.first_usable_lba - g.entries_lba ||
      g.first_usable_lba > g.last_usable_lba || g.last_usable_lba >= g.backup_entries_lba ||
      g.backup_entries_lba > g.backup_lba || array > g.backup_lba - g.backup_entries_lba) {
    return inconsistent(fmt::format("GPT structures out of order (array at {}, usable {}..{}, backup array at {}, "
                                    "backup header at {})", g.entries_lba, g.first_usable_lba, g.last_usable_lba,
                                    g.backup_entries_lba, g.backup_lba));
  }
  if (g.backup_lba >= sectors) {
    return too_small(t, fmt::format("the backup GPT header (LBA {})", g.backup_lba));
  }
  std::set<unsigned> numbers;
  std::vector<Span> spans;
  for (const Partition& p : t.partitions) {
    UTSUSHI_TRY(check_partition_geometry(t, p));
    if (p.number < 1 || p.number > g.entry_count || !numbers.insert(p.number).second) {
      return inconsistent(fmt::format("partition number {} is not a free slot of {}", p.number, g.entry_count));
    }
    if ((p.end() / ss) - 1 > g.last_usable_lba && t.disk_size < minimum_disk_size(t)) {
      return too_small(t, fmt::format("partition {} (ending at byte {})", p.number, p.end()));
    }
    if (p.offset / ss < g.first_usable_lba || (p.end() / ss) - 1 > g.last_usable_lba) {
      return inconsistent(fmt::format("partition {} (LBA {}..{}) lies outside the usable area {}..{}", p.number,
                                      p.offset / ss, p.end() / ss - 1, g.first_usable_lba, g.last_usable_lba));
    }
    spans.push_back({p.offset, p.end(), fmt::format("partition {}", p.number)});
  }
  return check_no_overlap(std::move(spans));
}

[[nodiscard]] Result<std::size_t> index_of(const PartitionTable& t, unsigned number) {
  for (std::size_t i = 0; i < t.partitions.size(); ++i) {
    if (t.partitions[i].number == number) {
      return i;
    }
  }
  return fail(Errc::not_found, fmt::format("no partition {}", number));
}

bool is_last_logical(const PartitionTable& t, std::size_t i) {
  return t.partitions[i].number >= 5 && (i + 1 == t.partitions.size() || t.partitions[i + 1].number < 5);
}

[[nodiscard]] Result<PartitionTable> checked(PartitionTable t) {
  UTSUSHI_TRY(check_layout(t));
  t.metadata = table_metadata(t);
  return t;
}

}  // namespace

[[nodiscard]] Result<void> check_layout(const PartitionTable& t) {
  const std::uint32_t ss = t.sector_size;
  if (ss < 512 || (ss & (ss - 1)) != 0) {
    return inconsistent(fmt::format("sector size {} is not a power of two from 512", ss));
  }
  switch (t.kind) {
    case TableKind::mbr: return check_mbr(t);
    case TableKind::gpt: return check_gpt(t);
    case TableKind::none: break;
  }
  return {};
}

std::uint64_t minimum_disk_size(const PartitionTable& t) {
  const std::uint64_t ss = t.sector_size;
  std::uint64_t end = ss;
  for (const Partition& p : t.partitions) {
    std::uint64_t e = 0;
    end = std::max(end, __builtin_add_overflow(p.offset, p.length, &e) ? UINT64_MAX : e);
  }
  if (t.extended) {
    end = std::max(end, t.extended->end());
  }
  if (t.kind == TableKind::gpt) {
    const GptGeometry& g = t.gpt;
    std::uint64_t last_used = std::max(end / ss, g.first_usable_lba + 1);
    std::uint64_t sectors = 0;
    if (__builtin_add_overflow(last_used, gpt::entries_sectors(g.entry_count, g.entry_size, t.sector_size) + 1,
                               &sectors) ||
        __builtin_mul_overflow(sectors, ss, &end)) {
      end = UINT64_MAX;
    }
  }
  return end;
}

[[nodiscard]] Result<PartitionTable> resize_disk(const PartitionTable& t, std::uint64_t new_size) {
  PartitionTable r = t;
  r.disk_size = new_size;
  if (r.kind == TableKind::gpt) {
    GptGeometry& g = r.gpt;
    const std::uint64_t sectors = new_size / r.sector_size;
    const std::uint64_t array = gpt::entries_sectors(g.entry_count, g.entry_size, r.sector_size);
    if (sectors < array + 2 || sectors - array - 2 < g.first_usable_lba) {
      return too_small(r, "the GPT");
    }
    g.backup_lba = sectors - 1;
    g.backup_entries_lba = g.backup_lba - array;
    g.last_usable_lba = g.backup_entries_lba - 1;
  }
  return checked(std::move(r));
}

[[nodiscard]] Result<PartitionTable> resize_partition(const PartitionTable& t, unsigned number, std::uint64_t new_length) {
  PartitionTable r = t;
  std::size_t i = UTSUSHI_TRY(index_of(r, number));
  Partition& p = r.partitions[i];
  std::uint64_t old_end = p.end();
  p.length = new_length;
  std::uint64_t new_end = 0;
  if (__builtin_add_overflow(p.offset, new_length, &new_end)) {
    return inconsistent(fmt::format("partition {} would end beyond 2^64 bytes", number));
  }
  if (r.extended && is_last_logical(r, i) && (r.extended->end() == old_end || new_end > r.extended->end())) {
    r.extended->length = new_end - r.extended->offset;
  }
  return checked(std::move(r));
}

[[nodiscard]] Result<MovedPartition> move_partition(const PartitionTable& t, unsigned number, std::uint64_t new_offset) {
  PartitionTable r = t;
  std::size_t i = UTSUSHI_TRY(index_of(r, number));
  Partition& p = r.partitions[i];
  ByteMove data{p.offset, new_offset, p.length};
  if (p.ebr_offset != 0 && p.number != 5) {
    std::uint64_t gap = p.offset - p.ebr_offset;
    if (new_offset < gap) {
      return inconsistent(fmt::format("partition {} cannot start at byte {}: its EBR would not fit before it",
                                      number, new_offset));
    }
    p.ebr_offset = new_offset - gap;
  }
  p.offset = new_offset;
  return MovedPartition{UTSUSHI_TRY(checked(std::move(r))), data};
}

[[nodiscard]] Result<std::uint64_t> max_partition_length(const PartitionTable& t, unsigned number) {
  std::size_t i = UTSUSHI_TRY(index_of(t, number));
  const Partition& p = t.partitions[i];
  const std::uint64_t ss = t.sector_size;
  std::uint64_t limit = t.disk_size / ss * ss;
  if (t.kind == TableKind::gpt) {
    limit = std::min(limit, (t.gpt.last_usable_lba + 1) * ss);
  } else if (t.kind == TableKind::mbr) {
    limit = std::min(limit, (p.offset / ss + mbr::k_max_lba) * ss);
  }
  auto obstacle = [&](std::uint64_t at) {
    if (at >= p.end()) {
      limit = std::min(limit, at);
    }
  };
  for (const Partition& q : t.partitions) {
    if (q.number != p.number) {
      obstacle(q.offset);
      if (q.ebr_offset != 0) {
        obstacle(q.ebr_offset);
      }
    }
  }
  if (t.extended) {
    if (p.number <= 4) {
      obstacle(t.extended->offset);
    } else if (!is_last_logical(t, i)) {
      obstacle(t.extended->end());
    }
  }
  if (limit < p.end()) {
    return inconsistent(fmt::format("partition {} already reaches past the usable area", number));
  }
  return limit - p.offset;
}

}  // namespace utsushi::disk
