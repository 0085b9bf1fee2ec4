// Encoding a PartitionTable into the sectors of its MBR or GPT (formats in
// mbr_format.h and gpt_format.h), and writing them to a device.
#include <fmt/core.h>

#include <algorithm>
#include <charconv>

#include "utsushi/common/endian.h"
#include "utsushi/disk/gpt_format.h"
#include "utsushi/disk/layout_ops.h"
#include "utsushi/disk/mbr_format.h"

namespace utsushi::disk {
namespace {

// "0x83" -> 0x83; "0x1234abcd" -> 0x1234abcd (at most `max`).
[[nodiscard]] Result<std::uint64_t> parse_hex(std::string_view text, std::uint64_t max, std::string_view what) {
  std::uint64_t v = 0;
  bool ok = text.size() > 2 && text.substr(0, 2) == "0x";
  if (ok) {
    auto [end, ec] = std::from_chars(text.data() + 2, text.data() + text.size(), v, 16);
    ok = ec == std::errc() && end == text.data() + text.size() && v <= max;
  }
  if (!ok) {
    return fail(Errc::invalid_argument, fmt::format("{} '{}' is not a hexadecimal number 0x0..0x{:x}", what, text, max));
  }
  return v;
}

// The bytes [from, 512) of an MBR-layout sector holding `entries`.
SectorWrite entries_write(std::uint64_t sector_offset, std::size_t from, const mbr::Entries& entries,
                          const std::array<std::uint64_t, mbr::k_entry_count>& chs_base = {}) {
  std::vector<std::uint8_t> sector(mbr::k_sector_size, 0);
  mbr::encode_entries(entries, sector, chs_base);
  return {sector_offset + from, std::vector<std::uint8_t>(sector.begin() + static_cast<std::ptrdiff_t>(from), sector.end())};
}

[[nodiscard]] Result<mbr::Entry> mbr_entry(const Partition& p, std::uint64_t relative_to, std::uint32_t ss) {
  mbr::Entry e;
  e.status = p.bootable ? mbr::k_status_active : 0;
  e.type = static_cast<std::uint8_t>(UTSUSHI_TRY(parse_hex(p.type, 0xFF, fmt::format("partition {} type", p.number))));
  e.lba_start = static_cast<std::uint32_t>((p.offset - relative_to) / ss);  // check_layout bounds both to 32 bits
  e.lba_count = static_cast<std::uint32_t>(p.length / ss);
  return e;
}

[[nodiscard]] Result<std::vector<SectorWrite>> encode_mbr(const PartitionTable& t) {
  const std::uint32_t ss = t.sector_size;
  mbr::Entries primary{};
  std::vector<const Partition*> logicals;
  for (const Partition& p : t.partitions) {
    if (p.number <= 4) {
      primary[p.number - 1] = UTSUSHI_TRY(mbr_entry(p, 0, ss));
    } else {
      logicals.push_back(&p);
    }
  }
  if (t.extended) {
    const MbrExtended& x = *t.extended;
    primary[x.slot - 1] = {0, x.type, static_cast<std::uint32_t>(x.offset / ss), static_cast<std::uint32_t>(x.length / ss)};
  }
  std::vector<SectorWrite> out;
  SectorWrite s0 = entries_write(0, mbr::k_disk_signature_offset, primary);
  auto signature = UTSUSHI_TRY(parse_hex(t.disk_id.empty() ? "0x0" : t.disk_id, 0xFFFFFFFF, "MBR disk signature"));
  store_le32(s0.bytes.data(), static_cast<std::uint32_t>(signature));
  out.push_back(std::move(s0));
  if (t.extended && logicals.empty()) {
    out.push_back(entries_write(t.extended->offset, mbr::k_entries_offset, {}));  // an empty chain
  }
  for (std::size_t i = 0; i < logicals.size(); ++i) {
    const Partition& p = *logicals[i];
    mbr::Entries ebr{};
    ebr[0] = UTSUSHI_TRY(mbr_entry(p, p.ebr_offset, ss));
    if (i + 1 < logicals.size()) {
      const Partition& next = *logicals[i + 1];
      ebr[1] = {0, mbr::k_type_extended_chs, static_cast<std::uint32_t>((next.ebr_offset - t.extended->offset) / ss),
                static_cast<std::uint32_t>((next.end() - next.ebr_offset) / ss)};
    }
    out.push_back(entries_write(p.ebr_offset, mbr::k_entries_offset, ebr,
                                {p.ebr_offset / ss, t.extended->offset / ss, 0, 0}));
  }
  return out;
}

[[nodiscard]] Result<gpt::Entry> gpt_entry(const Partition& p, std::uint32_t ss) {
  gpt::Entry e;
  e.type = UTSUSHI_TRY_CTX(parse_guid(p.type), fmt::format("partition {} type", p.number));
  e.unique = UTSUSHI_TRY_CTX(parse_guid(p.uuid), fmt::format("partition {} GUID", p.number));
  e.first_lba = p.offset / ss;
  e.last_lba = p.end() / ss - 1;
  e.attributes = p.attributes | (p.bootable ? gpt::k_attr_legacy_bios_bootable : 0);
  e.name = p.name;
  return e;
}

[[nodiscard]] Result<std::vector<SectorWrite>> encode_gpt(const PartitionTable& t) {
  const std::uint32_t ss = t.sector_size;
  const GptGeometry& g = t.gpt;
  const std::uint64_t sectors = t.disk_size / ss;
  mbr::Entries protective{};
  protective[0] = {0, mbr::k_type_gpt_protective, 1, static_cast<std::uint32_t>(std::min(sectors - 1, mbr::k_max_lba))};

  std::vector<gpt::Entry> entries(g.entry_count);
  for (const Partition& p : t.partitions) {
    entries[p.number - 1] = UTSUSHI_TRY(gpt_entry(p, ss));
  }
  auto array = UTSUSHI_TRY(gpt::encode_entries(entries, g.entry_count, g.entry_size, ss));
  gpt::Header h;
  h.disk_guid = UTSUSHI_TRY_CTX(parse_guid(t.disk_id), "disk GUID");
  h.first_usable_lba = g.first_usable_lba;
  h.last_usable_lba = g.last_usable_lba;
  h.entry_count = g.entry_count;
  h.entry_size = g.entry_size;
  h.entries_crc = gpt::crc32_of(std::span(array).first(gpt::entries_bytes(g.entry_count, g.entry_size)));
  gpt::Header primary = h, backup = h;
  primary.my_lba = 1;
  primary.alternate_lba = g.backup_lba;
  primary.entries_lba = g.entries_lba;
  backup.my_lba = g.backup_lba;
  backup.alternate_lba = 1;
  backup.entries_lba = g.backup_entries_lba;

  std::vector<SectorWrite> out;
  SectorWrite pmbr = entries_write(0, mbr::k_entries_offset, protective);
  // Ending CHS 0xFFFFFF, as sfdisk and gdisk write it (UEFI 2.10 table 5-4
  // allows it whenever the last LBA has no CHS form, i.e. beyond 8 GiB).
  std::fill_n(pmbr.bytes.begin() + mbr::e_chs_last, 3, std::uint8_t{0xFF});
  out.push_back(std::move(pmbr));
  out.push_back({std::uint64_t{ss}, gpt::encode_header(primary, ss)});
  out.push_back({g.entries_lba * ss, array});
  out.push_back({g.backup_entries_lba * ss, std::move(array)});
  out.push_back({g.backup_lba * ss, gpt::encode_header(backup, ss)});
  return out;
}

}  // namespace

[[nodiscard]] Result<std::vector<SectorWrite>> encode_partition_table(const PartitionTable& t) {
  UTSUSHI_TRY(check_layout(t));
  switch (t.kind) {
    case TableKind::mbr: return encode_mbr(t);
    case TableKind::gpt: return encode_gpt(t);
    case TableKind::none: break;
  }
  return fail(Errc::invalid_argument, "no partition table to encode");
}

[[nodiscard]] Result<void> write_partition_table(imagefmt::BlockDevice& disk, const PartitionTable& t) {
  if (disk.size() != t.disk_size) {
    return fail(Errc::invalid_argument, fmt::format("the table is laid out for {} bytes but the disk has {}",
                                                    t.disk_size, disk.size()));
  }
  for (const SectorWrite& w : UTSUSHI_TRY(encode_partition_table(t))) {
    UTSUSHI_TRY(disk.pwrite(w.bytes, w.offset));
  }
  return disk.flush();
}

}  // namespace utsushi::disk
