#include "utsushi/disk/gpt_format.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "utsushi/common/endian.h"

namespace utsushi::disk::gpt {
namespace {

constexpr char32_t k_replacement = 0xFFFD;

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// Decodes one UTF-8 sequence at s[i]; advances i. Invalid input: nullopt-like -1.
long next_code_point(std::string_view s, std::size_t& i) {
  auto b = static_cast<unsigned char>(s[i]);
  int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + static_cast<std::size_t>(len) > s.size()) {
    return -1;
  }
  long c = len == 1 ? b : b & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    auto t = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
    if ((t & 0xC0) != 0x80) {
      return -1;
    }
    c = (c << 6) | (t & 0x3F);
  }
  static constexpr long k_min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < k_min_for_len[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    return -1;  // overlong, out of range or a surrogate
  }
  i += static_cast<std::size_t>(len);
  return c;
}

}  // namespace

std::uint64_t entries_bytes(std::uint32_t count, std::uint32_t size) noexcept {
  return std::uint64_t{count} * size;  // 32 x 32 bits: no overflow in 64
}

std::uint64_t entries_sectors(std::uint32_t count, std::uint32_t size, std::uint32_t sector_size) noexcept {
  return (entries_bytes(count, size) + sector_size - 1) / sector_size;
}

std::uint32_t crc32_of(std::span<const std::uint8_t> bytes) noexcept {
  return static_cast<std::uint32_t>(::crc32_z(0L, bytes.data(), bytes.size()));
}

[[nodiscard]] Result<Header> decode_header(std::span<const std::uint8_t> sector) {
  if (sector.size() < k_header_size || std::memcmp(sector.data(), k_signature.data(), k_signature.size()) != 0) {
    return fail(Errc::not_found, "no GPT signature");
  }
  const std::uint8_t* p = sector.data();
  std::uint32_t hsize = load_le32(p + h_header_size);
  if (hsize < k_header_size || hsize > sector.size()) {
    return fail(Errc::corruption, fmt::format("bad header size {}", hsize));
  }
  std::vector<std::uint8_t> copy(sector.begin(), sector.begin() + hsize);
  store_le32(copy.data() + h_header_crc, 0);
  if (crc32_of(copy) != load_le32(p + h_header_crc)) {
    return fail(Errc::corruption, "header CRC32 mismatch");
  }
  Header h;
  h.my_lba = load_le64(p + h_my_lba);
  h.alternate_lba = load_le64(p + h_alternate_lba);
  h.first_usable_lba = load_le64(p + h_first_usable);
  h.last_usable_lba = load_le64(p + h_last_usable);
  h.disk_guid = guid_from_mixed_endian(sector.subspan(h_disk_guid).first<16>());
  h.entries_lba = load_le64(p + h_entries_lba);
  h.entry_count = load_le32(p + h_entry_count);
  h.entry_size = load_le32(p + h_entry_size);
  h.entries_crc = load_le32(p + h_entries_crc);
  if (h.entry_size < k_min_entry_size || (h.entry_size & (h.entry_size - 1)) != 0 ||
      entries_bytes(h.entry_count, h.entry_size) > k_max_entries_bytes) {
    return fail(Errc::corruption, fmt::format("bad partition entry array geometry ({} entries of {} bytes)",
                                              h.entry_count, h.entry_size));
  }
  if (h.first_usable_lba > h.last_usable_lba) {
    return fail(Errc::corruption, fmt::format("first usable LBA {} is after the last {}", h.first_usable_lba,
                                              h.last_usable_lba));
  }
  return h;
}

std::vector<std::uint8_t> encode_header(const Header& h, std::uint32_t sector_size) {
  std::vector<std::uint8_t> s(std::max<std::size_t>(sector_size, k_header_size), 0);
  std::uint8_t* p = s.data();
  std::memcpy(p + h_signature, k_signature.data(), k_signature.size());
  store_le32(p + h_revision, k_revision);
  store_le32(p + h_header_size, k_header_size);
  store_le64(p + h_my_lba, h.my_lba);
  store_le64(p + h_alternate_lba, h.alternate_lba);
  store_le64(p + h_first_usable, h.first_usable_lba);
  store_le64(p + h_last_usable, h.last_usable_lba);
  guid_to_mixed_endian(h.disk_guid, std::span(s).subspan(h_disk_guid).first<16>());
  store_le64(p + h_entries_lba, h.entries_lba);
  store_le32(p + h_entry_count, h.entry_count);
  store_le32(p + h_entry_size, h.entry_size);
  store_le32(p + h_entries_crc, h.entries_crc);
  store_le32(p + h_header_crc, crc32_of(std::span(s).first(k_header_size)));
  return s;
}

std::string decode_name(std::span<const std::uint8_t> field) {
  std::string out;
  for (std::size_t i = 0; i + 1 < field.size(); i += 2) {
    char32_t u = load_le16(field.data() + i);
    if (u == 0) {
      break;
    }
    if (u >= 0xD800 && u <= 0xDBFF && i + 3 < field.size()) {
      char32_t lo = load_le16(field.data() + i + 2);
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        append_utf8(out, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
        i += 2;
        continue;
      }
    }
    append_utf8(out, u >= 0xD800 && u <= 0xDFFF ? k_replacement : u);
  }
  return out;
}

[[nodiscard]] Result<std::vector<std::uint8_t>> encode_name(std::string_view utf8) {
  std::vector<std::uint8_t> field(2 * k_name_units, 0);
  std::size_t unit = 0;
  auto put = [&](std::uint16_t u) -> bool {
    if (unit == k_name_units) {
      return false;
    }
    store_le16(field.data() + 2 * unit++, u);
    return true;
  };
  for (std::size_t i = 0; i < utf8.size();) {
    long c = next_code_point(utf8, i);
    if (c < 0) {
      return fail(Errc::invalid_argument, "GPT partition name is not valid UTF-8");
    }
    bool ok = c < 0x10000 ? put(static_cast<std::uint16_t>(c))
                          : put(static_cast<std::uint16_t>(0xD800 + ((c - 0x10000) >> 10))) &&
                                put(static_cast<std::uint16_t>(0xDC00 + ((c - 0x10000) & 0x3FF)));
    if (!ok) {
      return fail(Errc::invalid_argument,
                  fmt::format("GPT partition name '{}' is longer than {} UTF-16 code units", utf8, k_name_units));
    }
  }
  return field;
}

[[nodiscard]] Result<std::vector<Entry>> decode_entries(std::span<const std::uint8_t> bytes, std::uint32_t count,
                                          std::uint32_t size) {
  if (size < k_min_entry_size || bytes.size() < entries_bytes(count, size)) {
    return fail(Errc::corruption, "partition entry array is shorter than its header says");
  }
  std::vector<Entry> out(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    auto e = bytes.subspan(std::size_t{i} * size, size);
    Entry& x = out[i];
    x.type = guid_from_mixed_endian(e.subspan(e_type).first<16>());
    if (!x.used()) {
      continue;
    }
    x.unique = guid_from_mixed_endian(e.subspan(e_unique).first<16>());
    x.first_lba = load_le64(e.data() + e_first_lba);
    x.last_lba = load_le64(e.data() + e_last_lba);
    x.attributes = load_le64(e.data() + e_attributes);
    x.name = decode_name(e.subspan(e_name, 2 * k_name_units));
    if (x.first_lba > x.last_lba) {
      return fail(Errc::corruption, fmt::format("GPT entry {} ends (LBA {}) before it starts (LBA {})", i + 1,
                                                x.last_lba, x.first_lba));
    }
  }
  return out;
}

[[nodiscard]] Result<std::vector<std::uint8_t>> encode_entries(std::span<const Entry> entries, std::uint32_t count,
                                                 std::uint32_t size, std::uint32_t sector_size) {
  if (entries.size() > count || size < k_min_entry_size) {
    return fail(Errc::invalid_argument, fmt::format("{} GPT entries do not fit an array of {}", entries.size(), count));
  }
  std::vector<std::uint8_t> out(static_cast<std::size_t>(entries_sectors(count, size, sector_size) * sector_size), 0);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& x = entries[i];
    if (!x.used()) {
      continue;
    }
    auto e = std::span(out).subspan(i * size, size);
    guid_to_mixed_endian(x.type, e.subspan(e_type).first<16>());
    guid_to_mixed_endian(x.unique, e.subspan(e_unique).first<16>());
    store_le64(e.data() + e_first_lba, x.first_lba);
    store_le64(e.data() + e_last_lba, x.last_lba);
    store_le64(e.data() + e_attributes, x.attributes);
    auto name = UTSUSHI_TRY(encode_name(x.name));
    std::copy(name.begin(), name.end(), e.begin() + e_name);
  }
  return out;
}

}  // namespace utsushi::disk::gpt
