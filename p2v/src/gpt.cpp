// GPT: UEFI Specification 2.10, section 5.3 "GUID Partition Table (GPT) Disk
// Layout": header (5.3.2, table 5-5) at LBA 1 with a backup at the last LBA,
// partition entry arrays (5.3.3, table 5-6), CRC32 as in zlib (ISO 3309).
// Both headers and both arrays are checked; a bad primary falls back to the
// backup (and the reverse) with a warning; both bad is corruption.
#include <fmt/core.h>
#include <zlib.h>

#include <optional>

#include "utsushi/p2v/endian.h"
#include "partition_table_impl.h"

namespace utsushi::p2v {
namespace {

constexpr std::string_view k_signature = "EFI PART";
constexpr std::size_t h_revision = 8, h_header_size = 12, h_header_crc = 16, h_my_lba = 24, h_alternate_lba = 32,
                      h_first_usable = 40, h_last_usable = 48, h_disk_guid = 56, h_entries_lba = 72,
                      h_entry_count = 80, h_entry_size = 84, h_entries_crc = 88;
constexpr std::uint32_t k_min_header_size = 92;
constexpr std::uint32_t k_min_entry_size = 128;
constexpr std::uint64_t k_max_entries_bytes = 4u << 20;  // sanity bound on the entry array
constexpr std::size_t e_type = 0, e_first_lba = 32, e_last_lba = 40, e_attributes = 48, e_name = 56;
constexpr std::size_t k_name_bytes = 72;
constexpr std::uint64_t k_attr_legacy_bios_bootable = 1ull << 2;

std::uint32_t crc32_of(std::span<const std::uint8_t> b) {
  return static_cast<std::uint32_t>(::crc32(0L, b.data(), static_cast<uInt>(b.size())));
}

// GUIDs are stored with their first three fields little-endian.
std::string guid_text(std::span<const std::uint8_t> b, std::size_t off) {
  return fmt::format("{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}", le32(b, off),
                     le16(b, off + 4), le16(b, off + 6), b[off + 8], b[off + 9], b[off + 10], b[off + 11],
                     b[off + 12], b[off + 13], b[off + 14], b[off + 15]);
}

struct Header {
  std::uint64_t my_lba = 0, alternate_lba = 0, first_usable = 0, last_usable = 0, entries_lba = 0;
  std::uint32_t entry_count = 0, entry_size = 0;
  std::string disk_guid;
  std::vector<std::uint8_t> entries;
};

// Reads and checks the header at `lba`; an error says what is wrong with it.
Result<Header> read_header(imagefmt::BlockDevice& disk, std::uint64_t ss, std::uint64_t lba) {
  const std::uint64_t sectors = disk.size() / ss;
  if (lba >= sectors) {
    return fail(Errc::corruption, "header LBA beyond the disk");
  }
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(ss));
  UTSUSHI_TRY(disk.pread(buf, lba * ss));
  std::span<std::uint8_t> s(buf);
  if (!bytes_equal(s, 0, k_signature)) {
    return fail(Errc::not_found, "no GPT signature");
  }
  std::uint32_t hsize = le32(s, h_header_size);
  if (hsize < k_min_header_size || hsize > ss) {
    return fail(Errc::corruption, fmt::format("bad header size {}", hsize));
  }
  std::uint32_t stored = le32(s, h_header_crc);
  put_le32(s, h_header_crc, 0);
  if (crc32_of(s.first(hsize)) != stored) {
    return fail(Errc::corruption, "header CRC32 mismatch");
  }
  (void)h_revision;
  Header h;
  h.my_lba = le64(s, h_my_lba);
  h.alternate_lba = le64(s, h_alternate_lba);
  h.first_usable = le64(s, h_first_usable);
  h.last_usable = le64(s, h_last_usable);
  h.entries_lba = le64(s, h_entries_lba);
  h.entry_count = le32(s, h_entry_count);
  h.entry_size = le32(s, h_entry_size);
  h.disk_guid = guid_text(s, h_disk_guid);
  if (h.my_lba != lba) {
    return fail(Errc::corruption, "header's own LBA is wrong");
  }
  if (h.first_usable > h.last_usable || h.last_usable >= sectors) {
    return fail(Errc::corruption, fmt::format("usable LBAs {}..{} do not fit the disk ({} sectors): truncated image?",
                                              h.first_usable, h.last_usable, sectors));
  }
  std::uint64_t bytes = static_cast<std::uint64_t>(h.entry_count) * h.entry_size;
  if (h.entry_size < k_min_entry_size || (h.entry_size & (h.entry_size - 1)) != 0 || bytes > k_max_entries_bytes) {
    return fail(Errc::corruption, "bad partition entry array geometry");
  }
  std::uint64_t array_sectors = (bytes + ss - 1) / ss;
  if (h.entries_lba >= sectors || array_sectors > sectors - h.entries_lba) {
    return fail(Errc::corruption, "partition entry array lies outside the disk");
  }
  h.entries.resize(static_cast<std::size_t>(array_sectors * ss));
  UTSUSHI_TRY(disk.pread(h.entries, h.entries_lba * ss));
  if (crc32_of(std::span<const std::uint8_t>(h.entries).first(static_cast<std::size_t>(bytes))) !=
      le32(s, h_entries_crc)) {
    return fail(Errc::corruption, "partition entry array CRC32 mismatch");
  }
  return h;
}

void add_header_areas(const Header& h, std::uint64_t ss, PartitionTable& t) {
  t.metadata.add(h.my_lba * ss, ss);
  t.metadata.add(h.entries_lba * ss, h.entries.size());
}

}  // namespace

Result<void> read_gpt(imagefmt::BlockDevice& disk, PartitionTable& t) {
  const std::uint64_t ss = t.sector_size;
  const std::uint64_t last_lba = disk.size() / ss - 1;
  auto primary = read_header(disk, ss, 1);
  if (!primary && primary.error().code() == Errc::io_error) {
    return std::unexpected(std::move(primary).error());
  }
  std::uint64_t backup_lba = primary ? primary->alternate_lba : last_lba;
  auto backup = read_header(disk, ss, backup_lba);
  if (!backup && backup.error().code() == Errc::io_error) {
    return std::unexpected(std::move(backup).error());
  }
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
  const Header& h = primary ? *primary : *backup;
  t.kind = TableKind::gpt;
  t.disk_id = h.disk_guid;
  if (primary) {
    add_header_areas(*primary, ss, t);
  }
  if (backup) {
    add_header_areas(*backup, ss, t);
  }
  // Everything outside the usable area belongs to the tables (and, before the
  // first usable LBA, the protective MBR): copy it all.
  t.metadata.add(0, h.first_usable * ss);
  t.metadata.add((h.last_usable + 1) * ss, disk.size() - (h.last_usable + 1) * ss);

  std::span<const std::uint8_t> arr(h.entries);
  for (std::uint32_t i = 0; i < h.entry_count; ++i) {
    auto e = arr.subspan(static_cast<std::size_t>(i) * h.entry_size, h.entry_size);
    bool unused = true;
    for (std::size_t k = 0; k < 16; ++k) {
      unused = unused && e[e_type + k] == 0;
    }
    if (unused) {
      continue;
    }
    std::uint64_t first = le64(e, e_first_lba), last = le64(e, e_last_lba);
    if (first > last || first < h.first_usable || last > h.last_usable) {
      return fail(Errc::corruption, fmt::format("GPT partition {} (LBA {}..{}) lies outside the usable area {}..{}",
                                                i + 1, first, last, h.first_usable, h.last_usable));
    }
    Partition p;
    p.number = i + 1;
    p.offset = first * ss;
    p.length = (last - first + 1) * ss;
    p.type = guid_text(e, e_type);
    for (std::size_t k = 0; k + 1 < k_name_bytes; k += 2) {
      std::uint16_t ch = le16(e, e_name + k);
      if (ch == 0) {
        break;
      }
      p.name.push_back(ch < 0x80 ? static_cast<char>(ch) : '?');
    }
    p.bootable = (le64(e, e_attributes) & k_attr_legacy_bios_bootable) != 0;
    t.partitions.push_back(std::move(p));
  }
  return {};
}

}  // namespace utsushi::p2v
