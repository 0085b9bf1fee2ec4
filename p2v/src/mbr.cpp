// MBR partition tables: primary entries, the extended partition and its chain
// of EBRs (logical partitions). Layout: the IBM PC MBR (partition entries at
// 446, 16 bytes each: status, CHS first, type, CHS last, LBA start, sector
// count; signature 0x55 0xAA at 510), as described in the UEFI spec 2.10
// section 5.2.1 "Legacy Master Boot Record".
#include <fmt/core.h>

#include <set>

#include "utsushi/common/zero.h"
#include "utsushi/p2v/endian.h"
#include "partition_table_impl.h"

namespace utsushi::p2v {
namespace {

constexpr std::size_t k_entries_offset = 446;
constexpr std::size_t k_entry_size = 16;
constexpr std::size_t k_boot_code_size = 440;
constexpr unsigned k_max_logical = 128;  // bounds a looping EBR chain

}  // namespace

bool is_extended_type(std::uint8_t type) noexcept { return type == 0x05 || type == 0x0F || type == 0x85; }

Result<std::vector<MbrEntry>> decode_mbr_entries(std::span<const std::uint8_t> sector) {
  if (sector.size() < 512 || sector[510] != 0x55 || sector[511] != 0xAA) {
    return fail(Errc::corruption, "no MBR signature");
  }
  std::vector<MbrEntry> out;
  for (std::size_t i = 0; i < 4; ++i) {
    std::size_t o = k_entries_offset + i * k_entry_size;
    MbrEntry e;
    e.status = sector[o];
    e.type = sector[o + 4];
    e.lba_start = le32(sector, o + 8);
    e.lba_count = le32(sector, o + 12);
    if (e.status != 0 && e.status != 0x80) {
      return fail(Errc::corruption, fmt::format("MBR entry {} has an invalid status byte 0x{:02x}", i + 1, e.status));
    }
    out.push_back(e);
  }
  return out;
}

Result<void> read_mbr(imagefmt::BlockDevice& disk, std::span<const std::uint8_t> sector0, PartitionTable& t) {
  const std::uint64_t ss = t.sector_size;
  const std::uint64_t disk_size = disk.size();
  auto entries = UTSUSHI_TRY(decode_mbr_entries(sector0));
  t.kind = TableKind::mbr;
  t.disk_id = fmt::format("0x{:08x}", le32(sector0, 440));
  t.has_boot_code = !is_all_zero(sector0.first(k_boot_code_size));
  t.metadata.add(0, ss);

  auto check = [&](std::uint64_t lba, std::uint64_t count, std::string_view what) -> Result<void> {
    std::uint64_t end = (lba + count) * ss;  // 32-bit values: no overflow in 64 bits
    if (end > disk_size) {
      return fail(Errc::corruption, fmt::format("{} ends at byte {}, beyond the end of the disk ({} bytes): "
                                                "truncated image or wrong disk?", what, end, disk_size));
    }
    return {};
  };

  std::uint64_t ext_start = 0, ext_count = 0;
  for (unsigned i = 0; i < 4; ++i) {
    const MbrEntry& e = entries[i];
    if (e.type == 0 || e.lba_count == 0) {
      continue;
    }
    UTSUSHI_TRY(check(e.lba_start, e.lba_count, fmt::format("partition {}", i + 1)));
    if (is_extended_type(e.type)) {
      if (ext_count != 0) {
        return fail(Errc::corruption, "MBR has more than one extended partition");
      }
      ext_start = e.lba_start;
      ext_count = e.lba_count;
      continue;
    }
    t.partitions.push_back({i + 1, e.lba_start * ss, e.lba_count * ss, fmt::format("0x{:02x}", e.type), "",
                            e.status == 0x80});
  }

  // Logical partitions: each EBR's first entry is relative to the EBR, its
  // second links to the next EBR relative to the extended partition's start.
  std::set<std::uint64_t> seen;
  std::uint64_t ebr = ext_start;
  unsigned number = 5;
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(ss));
  while (ext_count != 0 && number < 5 + k_max_logical) {
    if (!seen.insert(ebr).second) {
      return fail(Errc::corruption, "the EBR chain loops");
    }
    if (ebr < ext_start || ebr >= ext_start + ext_count) {
      return fail(Errc::corruption, "an EBR lies outside the extended partition");
    }
    UTSUSHI_TRY(disk.pread(buf, ebr * ss));
    auto le = decode_mbr_entries(buf);
    if (!le) {
      return fail(Errc::corruption, fmt::format("EBR at sector {}: {}", ebr, le.error().message()));
    }
    t.metadata.add(ebr * ss, ss);
    const MbrEntry& part = (*le)[0];
    const MbrEntry& next = (*le)[1];
    if (part.type != 0 && part.lba_count != 0) {
      std::uint64_t start = ebr + part.lba_start;
      UTSUSHI_TRY(check(start, part.lba_count, fmt::format("partition {}", number)));
      if (start + part.lba_count > ext_start + ext_count) {
        return fail(Errc::corruption, fmt::format("logical partition {} leaves the extended partition", number));
      }
      t.partitions.push_back({number, start * ss, part.lba_count * ss, fmt::format("0x{:02x}", part.type), "",
                              part.status == 0x80});
      ++number;
    }
    if (next.type == 0 || next.lba_start == 0) {
      break;
    }
    ebr = ext_start + next.lba_start;
  }
  return {};
}

}  // namespace utsushi::p2v
