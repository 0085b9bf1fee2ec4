// Reading an MBR from a disk: the four primary records, the extended
// partition and its chain of EBRs (logical partitions); layout in
// mbr_format.h. The chain is bounded and checked for loops and for EBRs or
// partitions that leave the extended partition.
#include <fmt/core.h>

#include <set>

#include "partition_table_impl.h"
#include "utsushi/common/endian.h"
#include "utsushi/common/zero.h"
#include "utsushi/disk/mbr_format.h"

namespace utsushi::disk {
namespace {

constexpr unsigned k_max_logical = 128;  // bounds a looping EBR chain

// Checks that sectors [lba, lba + count) lie on the disk (32-bit values: no overflow in 64 bits).
[[nodiscard]] Result<void> check_on_disk(std::uint64_t lba, std::uint64_t count, std::uint64_t ss, std::uint64_t disk_size,
                           std::string_view what) {
  std::uint64_t end = (lba + count) * ss;
  if (end > disk_size) {
    return fail(Errc::corruption, fmt::format("{} ends at byte {}, beyond the end of the disk ({} bytes): "
                                              "truncated image or wrong disk?", what, end, disk_size));
  }
  return {};
}

Partition partition_of(unsigned number, std::uint64_t lba, const mbr::Entry& e, std::uint64_t ss) {
  Partition p;
  p.number = number;
  p.offset = lba * ss;
  p.length = std::uint64_t{e.lba_count} * ss;
  p.type = fmt::format("0x{:02x}", e.type);
  p.bootable = e.status == mbr::k_status_active;
  return p;
}

// Logical partitions: each EBR's first entry is relative to the EBR, its
// second links to the next EBR relative to the extended partition's start.
[[nodiscard]] Result<void> read_logicals(imagefmt::BlockDevice& disk, const MbrExtended& ext, PartitionTable& t) {
  const std::uint64_t ss = t.sector_size;
  const std::uint64_t ext_start = ext.offset / ss, ext_count = ext.length / ss;
  std::set<std::uint64_t> seen;
  std::uint64_t ebr = ext_start;
  unsigned number = 5;
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(ss));
  while (number < 5 + k_max_logical) {
    if (!seen.insert(ebr).second) {
      return fail(Errc::corruption, "the EBR chain loops");
    }
    if (ebr < ext_start || ebr >= ext_start + ext_count) {
      return fail(Errc::corruption, "an EBR lies outside the extended partition");
    }
    UTSUSHI_TRY(disk.pread(buf, ebr * ss));
    auto entries = mbr::decode_entries(buf);
    if (!entries) {
      return fail(Errc::corruption, fmt::format("EBR at sector {}: {}", ebr, entries.error().message()));
    }
    const mbr::Entry& part = (*entries)[0];
    const mbr::Entry& next = (*entries)[1];
    if (!part.empty()) {
      std::uint64_t start = ebr + part.lba_start;
      UTSUSHI_TRY(check_on_disk(start, part.lba_count, ss, t.disk_size, fmt::format("partition {}", number)));
      if (start + part.lba_count > ext_start + ext_count) {
        return fail(Errc::corruption, fmt::format("logical partition {} leaves the extended partition", number));
      }
      Partition p = partition_of(number++, start, part, ss);
      p.ebr_offset = ebr * ss;
      t.partitions.push_back(std::move(p));
    }
    if (next.type == mbr::k_type_empty || next.lba_start == 0) {
      break;
    }
    ebr = ext_start + next.lba_start;
  }
  return {};
}

}  // namespace

[[nodiscard]] Result<void> read_mbr(imagefmt::BlockDevice& disk, std::span<const std::uint8_t> sector0, PartitionTable& t) {
  const std::uint64_t ss = t.sector_size;
  auto entries = UTSUSHI_TRY(mbr::decode_entries(sector0));
  t.kind = TableKind::mbr;
  t.disk_id = fmt::format("0x{:08x}", load_le32(sector0.data() + mbr::k_disk_signature_offset));
  t.has_boot_code = !is_all_zero(sector0.first(mbr::k_boot_code_size));
  for (unsigned i = 0; i < mbr::k_entry_count; ++i) {
    const mbr::Entry& e = entries[i];
    if (e.empty()) {
      continue;
    }
    UTSUSHI_TRY(check_on_disk(e.lba_start, e.lba_count, ss, t.disk_size, fmt::format("partition {}", i + 1)));
    if (!mbr::is_extended_type(e.type)) {
      t.partitions.push_back(partition_of(i + 1, e.lba_start, e, ss));
      continue;
    }
    if (t.extended) {
      return fail(Errc::corruption, "MBR has more than one extended partition");
    }
    t.extended = MbrExtended{i + 1, e.type, e.lba_start * ss, std::uint64_t{e.lba_count} * ss};
  }
  if (t.extended) {
    UTSUSHI_TRY(read_logicals(disk, *t.extended, t));
  }
  return {};
}

}  // namespace utsushi::disk
