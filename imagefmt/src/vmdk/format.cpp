// SparseExtentHeader encode/decode (vmware/open-vmdk vmdk/vmware_vmdk.h).
#include "utsushi/imagefmt/vmdk.h"

#include <cstring>

namespace utsushi::imagefmt::vmdk {
Result<Header> decode_header(std::span<const std::uint8_t> s) {
  if (s.size() < k_sector) {
    return fail(Errc::corruption, "vmdk: file too small for a sparse extent header");
  }
  const std::uint8_t* p = s.data();
  if (load_le32(p) != k_magic) {
    return fail(Errc::corruption, "vmdk: bad magic");
  }
  Header h;
  h.version = load_le32(p + 4);
  h.flags = load_le32(p + 8);
  h.capacity = load_le64(p + 12);
  h.grain_size = load_le64(p + 20);
  h.descriptor_offset = load_le64(p + 28);
  h.descriptor_size = load_le64(p + 36);
  h.num_gtes_per_gt = load_le32(p + 44);
  h.rgd_offset = load_le64(p + 48);
  h.gd_offset = load_le64(p + 56);
  h.overhead = load_le64(p + 64);
  h.unclean_shutdown = p[72];
  h.compress_algorithm = load_le16(p + 77);
  if (h.version < 1 || h.version > 3) {
    return fail(Errc::not_supported, "vmdk: unsupported sparse extent version " + std::to_string(h.version));
  }
  if ((h.flags & k_flag_newline_test) != 0 && !(p[73] == '\n' && p[74] == ' ' && p[75] == '\r' && p[76] == '\n')) {
    return fail(Errc::corruption, "vmdk: newline detector damaged (file transferred in text mode?)");
  }
  std::uint32_t incompat = h.flags & 0xFFFF0000u;
  if ((incompat & ~(k_flag_compressed | k_flag_markers)) != 0) {
    return fail(Errc::not_supported, "vmdk: unknown incompatible flags");
  }
  if ((h.flags & k_flag_compressed) != 0 && h.compress_algorithm != 1) {
    return fail(Errc::not_supported, "vmdk: unknown compression algorithm " + std::to_string(h.compress_algorithm));
  }
  if (h.grain_size == 0 || h.grain_size > 2048 || (h.grain_size & (h.grain_size - 1)) != 0) {
    return fail(Errc::corruption, "vmdk: invalid grain size " + std::to_string(h.grain_size));
  }
  if (h.num_gtes_per_gt == 0 || h.num_gtes_per_gt > 65536 || (h.num_gtes_per_gt & (h.num_gtes_per_gt - 1)) != 0) {
    return fail(Errc::corruption, "vmdk: invalid number of grain table entries");
  }
  if (h.capacity > (1ull << 47)) {  // 64 PiB
    return fail(Errc::corruption, "vmdk: absurd capacity " + std::to_string(h.capacity));
  }
  return h;
}

void encode_header(const Header& h, std::span<std::uint8_t> s) {
  std::memset(s.data(), 0, k_sector);
  std::uint8_t* p = s.data();
  store_le32(p, k_magic);
  store_le32(p + 4, h.version);
  store_le32(p + 8, h.flags);
  store_le64(p + 12, h.capacity);
  store_le64(p + 20, h.grain_size);
  store_le64(p + 28, h.descriptor_offset);
  store_le64(p + 36, h.descriptor_size);
  store_le32(p + 44, h.num_gtes_per_gt);
  store_le64(p + 48, h.rgd_offset);
  store_le64(p + 56, h.gd_offset);
  store_le64(p + 64, h.overhead);
  p[72] = h.unclean_shutdown;
  p[73] = '\n';
  p[74] = ' ';
  p[75] = '\r';
  p[76] = '\n';
  store_le16(p + 77, h.compress_algorithm);
}

bool is_descriptor(std::span<const std::uint8_t> head) noexcept {
  return head.size() >= k_descriptor_signature.size() &&
         std::memcmp(head.data(), k_descriptor_signature.data(), k_descriptor_signature.size()) == 0;
}

// Lines are "key = value" or key="value" (spaces around '=' optional).
std::string descriptor_create_type(std::string_view text) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    auto trim = [](std::string_view v) {
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
      return v;
    };
    if (trim(line.substr(0, eq)) != "createType") {
      continue;
    }
    std::string_view value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    std::string out(value);
    for (char& c : out) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        c = '?';  // it goes into a message
      }
    }
    return out;
  }
  return {};
}

}  // namespace utsushi::imagefmt::vmdk
