#include <fmt/core.h>

#include <algorithm>

#include "utsushi/p2v/endian.h"
#include "partition_table_impl.h"

namespace utsushi::p2v {

std::string_view table_kind_name(TableKind k) noexcept {
  switch (k) {
    case TableKind::mbr: return "dos";
    case TableKind::gpt: return "gpt";
    case TableKind::none: break;
  }
  return "none";
}

namespace {

Result<void> check_overlaps(PartitionTable& t) {
  std::vector<const Partition*> sorted;
  for (const Partition& p : t.partitions) {
    sorted.push_back(&p);
  }
  std::sort(sorted.begin(), sorted.end(), [](const Partition* a, const Partition* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->offset < sorted[i - 1]->offset + sorted[i - 1]->length) {
      return fail(Errc::corruption, fmt::format("partitions {} and {} overlap", sorted[i - 1]->number,
                                                sorted[i]->number));
    }
  }
  return {};
}

}  // namespace

Result<PartitionTable> read_partition_table(imagefmt::BlockDevice& disk) {
  PartitionTable t;
  if (disk.size() < 512) {
    return t;
  }
  std::vector<std::uint8_t> sector0(512);
  UTSUSHI_TRY(disk.pread(sector0, 0));
  auto entries = decode_mbr_entries(sector0);
  bool protective = entries && std::any_of(entries->begin(), entries->end(),
                                           [](const MbrEntry& e) { return e.type == 0xEE; });
  // A GPT is looked for at both common sector sizes; its protective MBR is
  // not trusted alone (hybrid MBRs exist) and not required (some tools omit it).
  for (std::uint32_t ss : {512u, 4096u}) {
    if (disk.size() < 3ull * ss) {
      continue;
    }
    PartitionTable g;
    g.sector_size = ss;
    auto r = read_gpt(disk, g);
    if (r) {
      t = std::move(g);
      if (!protective) {
        t.warnings.push_back("GPT without a protective MBR");
      }
      break;
    }
    if (r.error().code() != Errc::not_found) {
      return std::unexpected(std::move(r).error());
    }
  }
  bool boot_sector = bytes_equal(sector0, 3, "NTFS    ") || bytes_equal(sector0, 54, "FAT") ||
                     bytes_equal(sector0, 82, "FAT32");
  if (t.kind == TableKind::none) {
    if (boot_sector && !protective) {
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
    if (t.partitions.empty()) {
      return PartitionTable{};
    }
  }
  UTSUSHI_TRY(check_overlaps(t));
  std::uint64_t first = disk.size();
  for (const Partition& p : t.partitions) {
    first = std::min(first, p.offset);
  }
  t.metadata.add(0, first);  // the MBR gap: boot loader code lives here
  std::span<const std::uint8_t> s(sector0);
  t.has_boot_code = t.has_boot_code || std::any_of(s.begin(), s.begin() + 440, [](std::uint8_t b) { return b != 0; });
  return t;
}

}  // namespace utsushi::p2v
