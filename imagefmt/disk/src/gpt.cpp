// Reading a GPT from a disk: both headers and both entry arrays (gpt_format.h),
// each copy checked on its own; a bad primary falls back to the backup (and
// the reverse) with a warning; both bad is corruption.
#include <fmt/core.h>

#include "partition_table_impl.h"
#include "utsushi/disk/gpt_format.h"

namespace utsushi::disk {
namespace {

// A header and its entry array, both verified.
struct Copy {
  gpt::Header header;
  std::vector<gpt::Entry> entries;
};

// Reads and checks the copy whose header is at `lba`; an error says what is wrong with it.
[[nodiscard]] Result<Copy> read_copy(imagefmt::BlockDevice& disk, std::uint32_t ss, std::uint64_t lba) {
  const std::uint64_t sectors = disk.size() / ss;
  if (lba >= sectors) {
    return fail(Errc::corruption, "header LBA beyond the disk");
  }
  std::vector<std::uint8_t> buf(ss);
  UTSUSHI_TRY(disk.pread(buf, lba * ss));
  Copy c{UTSUSHI_TRY(gpt::decode_header(buf)), {}};
  const gpt::Header& h = c.header;
  if (h.my_lba != lba) {
    return fail(Errc::corruption, "header's own LBA is wrong");
  }
  if (h.last_usable_lba >= sectors) {
    return fail(Errc::corruption, fmt::format("usable LBAs {}..{} do not fit the disk ({} sectors): truncated image?",
                                              h.first_usable_lba, h.last_usable_lba, sectors));
  }
  std::uint64_t array_sectors = gpt::entries_sectors(h.entry_count, h.entry_size, ss);
  if (h.entries_lba >= sectors || array_sectors > sectors - h.entries_lba) {
    return fail(Errc::corruption, "partition entry array lies outside the disk");
  }
  std::vector<std::uint8_t> array(static_cast<std::size_t>(array_sectors * ss));
  UTSUSHI_TRY(disk.pread(array, h.entries_lba * ss));
  auto bytes = std::span<const std::uint8_t>(array).first(gpt::entries_bytes(h.entry_count, h.entry_size));
  if (gpt::crc32_of(bytes) != h.entries_crc) {
    return fail(Errc::corruption, "partition entry array CRC32 mismatch");
  }
  c.entries = UTSUSHI_TRY(gpt::decode_entries(bytes, h.entry_count, h.entry_size));
  return c;
}

// Fails on device errors; anything else is a verdict on the copy.
[[nodiscard]] Result<Result<Copy>> try_copy(imagefmt::BlockDevice& disk, std::uint32_t ss, std::uint64_t lba) {
  auto c = read_copy(disk, ss, lba);
  if (!c && (c.error().code() == Errc::io_error || c.error().code() == Errc::cancelled)) {
    return std::unexpected(std::move(c).error());
  }
  return c;
}

GptGeometry geometry_of(const Result<Copy>& primary, const Result<Copy>& backup, std::uint32_t ss,
                        std::uint64_t sectors) {
  const gpt::Header& h = primary ? primary->header : backup->header;
  GptGeometry g;
  g.first_usable_lba = h.first_usable_lba;
  g.last_usable_lba = h.last_usable_lba;
  g.entry_count = h.entry_count;
  g.entry_size = h.entry_size;
  const std::uint64_t array_sectors = gpt::entries_sectors(h.entry_count, h.entry_size, ss);
  g.entries_lba = primary ? primary->header.entries_lba : 2;
  // Without a valid backup its place is taken from the primary when it lies
  // on the disk, else it is the last sector (where the next write puts it).
  g.backup_lba = backup ? backup->header.my_lba
                        : (primary->header.alternate_lba < sectors ? primary->header.alternate_lba : sectors - 1);
  g.backup_entries_lba = backup ? backup->header.entries_lba
                                : (g.backup_lba > array_sectors ? g.backup_lba - array_sectors : g.backup_lba);
  return g;
}

}  // namespace

[[nodiscard]] Result<void> read_gpt(imagefmt::BlockDevice& disk, PartitionTable& t) {
  const std::uint32_t ss = t.sector_size;
  const std::uint64_t last_lba = disk.size() / ss - 1;
  auto primary = UTSUSHI_TRY(try_copy(disk, ss, 1));
  auto backup = UTSUSHI_TRY(try_copy(disk, ss, primary ? primary->header.alternate_lba : last_lba));
  if (!primary && !backup && primary.error().code() == Errc::not_found &&
      backup.error().code() == Errc::not_found) {
    return fail(Errc::not_found, "no GPT");
  }
  if (!primary && !backup) {
    return fail(Errc::corruption, "GPT is corrupt: primary header: " + primary.error().message() +
                                      "; backup header: " + backup.error().message());
  }
  if (!primary) {
    t.warnings.push_back("primary GPT header is unusable (" + primary.error().message() + "); using the backup");
  } else if (!backup) {
    t.warnings.push_back("backup GPT header is unusable (" + backup.error().message() + "); using the primary");
  }
  const Copy& c = primary ? *primary : *backup;
  t.kind = TableKind::gpt;
  t.disk_id = c.header.disk_guid.text();
  t.gpt = geometry_of(primary, backup, ss, last_lba + 1);
  for (std::size_t i = 0; i < c.entries.size(); ++i) {
    const gpt::Entry& e = c.entries[i];
    if (!e.used()) {
      continue;
    }
    if (e.first_lba < c.header.first_usable_lba || e.last_lba > c.header.last_usable_lba) {
      return fail(Errc::corruption, fmt::format("GPT partition {} (LBA {}..{}) lies outside the usable area {}..{}",
                                                i + 1, e.first_lba, e.last_lba, c.header.first_usable_lba,
                                                c.header.last_usable_lba));
    }
    Partition p;
    p.number = static_cast<unsigned>(i + 1);
    p.offset = e.first_lba * ss;
    p.length = (e.last_lba - e.first_lba + 1) * ss;
    p.type = e.type.text();
    p.name = e.name;
    p.uuid = e.unique.text();
    p.attributes = e.attributes & ~gpt::k_attr_legacy_bios_bootable;
    p.bootable = (e.attributes & gpt::k_attr_legacy_bios_bootable) != 0;
    t.partitions.push_back(std::move(p));
  }
  return {};
}

}  // namespace utsushi::disk
