#include "utsushi/disk/mbr_format.h"

#include <fmt/format.h>

#include <algorithm>

#include "utsushi/common/endian.h"

namespace utsushi::disk::mbr {

bool is_extended_type(std::uint8_t type) noexcept {
  return type == k_type_extended_chs || type == k_type_extended_lba || type == k_type_extended_linux;
}

[[nodiscard]] Result<Entries> decode_entries(std::span<const std::uint8_t> sector) {
  if (sector.size() < k_sector_size || sector[k_signature_offset] != k_signature[0] ||
      sector[k_signature_offset + 1] != k_signature[1]) {
    return fail(Errc::corruption, "no MBR signature");
  }
  Entries out;
  for (std::size_t i = 0; i < k_entry_count; ++i) {
    const std::uint8_t* r = sector.data() + k_entries_offset + i * k_entry_size;
    Entry& e = out[i];
    e.status = r[e_status];
    e.type = r[e_type];
    e.lba_start = load_le32(r + e_lba_start);
    e.lba_count = load_le32(r + e_lba_count);
    if (e.status != 0 && e.status != k_status_active) {
      return fail(Errc::corruption, fmt::format("MBR entry {} has an invalid status byte 0x{:02x}", i + 1, e.status));
    }
  }
  return out;
}

std::array<std::uint8_t, 3> chs_of(std::uint64_t lba) noexcept {
  const std::uint64_t per_cylinder = std::uint64_t{k_chs_heads} * k_chs_sectors;
  std::uint64_t cylinder = lba / per_cylinder;
  if (cylinder > k_chs_max_cylinder) {
    return {0xFE, 0xFF, 0xFF};  // beyond CHS: the conventional "use the LBA" marker
  }
  auto head = static_cast<std::uint8_t>((lba / k_chs_sectors) % k_chs_heads);
  auto sector = static_cast<std::uint8_t>(lba % k_chs_sectors + 1);
  return {head, static_cast<std::uint8_t>(sector | ((cylinder >> 2) & 0xC0)), static_cast<std::uint8_t>(cylinder & 0xFF)};
}

void encode_entries(const Entries& entries, std::span<std::uint8_t> sector,
                    const std::array<std::uint64_t, k_entry_count>& chs_base) noexcept {
  for (std::size_t i = 0; i < k_entry_count; ++i) {
    std::uint8_t* r = sector.data() + k_entries_offset + i * k_entry_size;
    const Entry& e = entries[i];
    std::fill(r, r + k_entry_size, std::uint8_t{0});
    if (e.empty()) {
      continue;
    }
    r[e_status] = e.status;
    r[e_type] = e.type;
    const std::uint64_t start = chs_base[i] + e.lba_start;
    auto first = chs_of(start);
    auto last = chs_of(start + e.lba_count - 1);
    std::copy(first.begin(), first.end(), r + e_chs_first);
    std::copy(last.begin(), last.end(), r + e_chs_last);
    store_le32(r + e_lba_start, e.lba_start);
    store_le32(r + e_lba_count, e.lba_count);
  }
  sector[k_signature_offset] = k_signature[0];
  sector[k_signature_offset + 1] = k_signature[1];
}

}  // namespace utsushi::disk::mbr
