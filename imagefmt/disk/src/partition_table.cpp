#include <fmt/core.h>

#include <algorithm>

#include "decode_util.h"
#include "partition_table_impl.h"
#include "utsushi/common/zero.h"
#include "utsushi/disk/gpt_format.h"
#include "utsushi/disk/mbr_format.h"

namespace utsushi::disk {

std::string_view table_kind_name(TableKind k) noexcept {
  switch (k) {
    case TableKind::mbr: return "dos";
    case TableKind::gpt: return "gpt";
    case TableKind::none: break;
  }
  return "none";
}

namespace {

constexpr std::uint32_t k_sector_sizes[] = {512, 4096};

[[nodiscard]] Result<void> check_overlaps(const PartitionTable& t) {
  std::vector<const Partition*> sorted;
  for (const Partition& p : t.partitions) {
    sorted.push_back(&p);
  }
  std::sort(sorted.begin(), sorted.end(), [](const Partition* a, const Partition* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->offset < sorted[i - 1]->end()) {
      return fail(Errc::corruption, fmt::format("partitions {} and {} overlap", sorted[i - 1]->number,
                                                sorted[i]->number));
    }
  }
  return {};
}

bool is_boot_sector(std::span<const std::uint8_t> sector0) {
  return bytes_equal(sector0, 3, "NTFS    ") || bytes_equal(sector0, 54, "FAT") || bytes_equal(sector0, 82, "FAT32");
}

// A GPT is looked for at both common sector sizes. Its protective MBR is not
// trusted alone (hybrid MBRs exist) and not required (some tools omit it).
[[nodiscard]] Result<bool> try_gpt(imagefmt::BlockDevice& disk, bool protective, PartitionTable& t) {
  for (std::uint32_t ss : k_sector_sizes) {
    if (disk.size() < 3ull * ss) {
      continue;
    }
    PartitionTable g;
    g.sector_size = ss;
    g.disk_size = disk.size();
    auto r = read_gpt(disk, g);
    if (r) {
      t = std::move(g);
      if (!protective) {
        t.warnings.push_back("GPT without a protective MBR");
      }
      return true;
    }
    if (r.error().code() != Errc::not_found) {
      return std::unexpected(std::move(r).error());
    }
  }
  return false;
}

}  // namespace

[[nodiscard]] Result<PartitionTable> read_partition_table(imagefmt::BlockDevice& disk) {
  PartitionTable t;
  t.disk_size = disk.size();
  if (disk.size() < mbr::k_sector_size) {
    return t;
  }
  std::vector<std::uint8_t> sector0(mbr::k_sector_size);
  UTSUSHI_TRY(disk.pread(sector0, 0));
  auto entries = mbr::decode_entries(sector0);
  bool protective = entries && std::any_of(entries->begin(), entries->end(), [](const mbr::Entry& e) {
                      return e.type == mbr::k_type_gpt_protective;
                    });
  bool gpt = UTSUSHI_TRY(try_gpt(disk, protective, t));
  if (!gpt) {
    if (is_boot_sector(sector0) && !protective) {
      return t;  // a filesystem on the whole disk, not a partition table
    }
    if (protective) {
      return fail(Errc::corruption, "protective MBR found but no GPT header (primary or backup)");
    }
    if (!entries) {
      return t;  // no table: a whole-disk filesystem or unknown content
    }
    auto r = read_mbr(disk, sector0, t);
    if (!r) {
      return std::unexpected(std::move(r).error().with_context("MBR"));
    }
    // An MBR-looking sector with no partitions may be a FAT/NTFS boot sector.
    if (t.partitions.empty() && !t.extended) {
      PartitionTable none;
      none.disk_size = disk.size();
      return none;
    }
  }
  UTSUSHI_TRY(check_overlaps(t));
  t.metadata = table_metadata(t);
  t.has_boot_code = !is_all_zero(std::span<const std::uint8_t>(sector0).first(mbr::k_boot_code_size));
  return t;
}

ByteRanges table_metadata(const PartitionTable& t) {
  ByteRanges m;
  const std::uint64_t ss = t.sector_size;
  if (t.kind == TableKind::mbr) {
    std::uint64_t first = t.disk_size;
    for (const Partition& p : t.partitions) {
      first = std::min(first, p.offset);
      if (p.ebr_offset != 0) {
        m.add(p.ebr_offset, ss);
      }
    }
    if (t.extended) {
      first = std::min(first, t.extended->offset);
      m.add(t.extended->offset, std::min<std::uint64_t>(ss, t.extended->length));  // the first EBR
    }
    m.add(0, std::max<std::uint64_t>(first, std::min<std::uint64_t>(ss, t.disk_size)));  // the MBR gap: boot loader code
  } else if (t.kind == TableKind::gpt) {
    const GptGeometry& g = t.gpt;
    std::uint64_t usable_start = std::min(g.first_usable_lba * ss, t.disk_size);
    std::uint64_t usable_end = std::min((g.last_usable_lba + 1) * ss, t.disk_size);
    m.add(0, usable_start);
    m.add(usable_end, t.disk_size - usable_end);
    // The arrays and the backup header normally lie outside the usable range already.
    std::uint64_t array = gpt::entries_sectors(g.entry_count, g.entry_size, t.sector_size) * ss;
    for (std::uint64_t at : {g.entries_lba * ss, g.backup_entries_lba * ss}) {
      if (at < t.disk_size) {
        m.add(at, std::min(array, t.disk_size - at));
      }
    }
    if (g.backup_lba * ss < t.disk_size) {
      m.add(g.backup_lba * ss, std::min<std::uint64_t>(ss, t.disk_size - g.backup_lba * ss));
    }
  }
  return m.clipped(t.disk_size);
}

}  // namespace utsushi::disk
