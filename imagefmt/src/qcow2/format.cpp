// Pure encode/decode of qcow2 structures (QEMU's docs/interop/qcow2.txt).
#include "utsushi/imagefmt/qcow2_format.h"

#include <algorithm>
#include <cstring>

namespace utsushi::imagefmt::qcow2 {
namespace {

std::unexpected<Error> corrupt(const std::string& what) { return fail(Errc::corruption, "qcow2: " + what); }
std::unexpected<Error> refuse(const std::string& what) { return fail(Errc::not_supported, "qcow2: " + what); }

bool aligned(std::uint64_t v, std::uint64_t cluster_size) { return (v & (cluster_size - 1)) == 0; }

// Checks that a table of `bytes` at `offset` is cluster aligned, does not
// overflow and (with TableBounds::inside_file) lies inside the file.
[[nodiscard]] Result<void> check_table(const char* name, std::uint64_t offset, std::uint64_t bytes,
                                       std::uint64_t cluster_size, std::uint64_t file_size, TableBounds bounds) {
  if (!aligned(offset, cluster_size)) {
    return corrupt(std::string(name) + " offset " + std::to_string(offset) + " is not cluster aligned");
  }
  if (offset > k_max_virtual_size || bytes > k_max_virtual_size - offset) {
    return corrupt(std::string(name) + " at offset " + std::to_string(offset) + " with " + std::to_string(bytes) +
                   " bytes is out of range");
  }
  if (bounds == TableBounds::inside_file && offset + bytes > file_size) {
    return corrupt(std::string(name) + " at offset " + std::to_string(offset) + " (" + std::to_string(bytes) +
                   " bytes) extends past the end of the file (" + std::to_string(file_size) + " bytes)");
  }
  return {};
}

}  // namespace

std::uint64_t l1_entries_for(std::uint64_t size, std::uint32_t cluster_bits, bool extended_l2) noexcept {
  std::uint64_t cs = 1ull << cluster_bits;
  std::uint64_t per_l2 = cs / (extended_l2 ? 16 : 8);
  std::uint64_t clusters = (size + cs - 1) >> cluster_bits;
  return (clusters + per_l2 - 1) / per_l2;
}

Result<Header> decode_header(std::span<const std::uint8_t> c0, std::uint64_t file_size, TableBounds bounds) {
  if (c0.size() < k_v2_header_length) {
    return corrupt("file too small for a header");
  }
  const std::uint8_t* p = c0.data();
  if (load_be32(p) != k_magic) {
    return corrupt("bad magic");
  }
  Header h;
  h.version = load_be32(p + 4);
  if (h.version != 2 && h.version != 3) {
    return refuse("unsupported version " + std::to_string(h.version));
  }
  h.backing_file_offset = load_be64(p + 8);
  h.backing_file_size = load_be32(p + 16);
  h.cluster_bits = load_be32(p + 20);
  h.size = load_be64(p + 24);
  h.crypt_method = load_be32(p + 32);
  h.l1_size = load_be32(p + 36);
  h.l1_table_offset = load_be64(p + 40);
  h.refcount_table_offset = load_be64(p + 48);
  h.refcount_table_clusters = load_be32(p + 56);
  h.nb_snapshots = load_be32(p + 60);
  h.snapshots_offset = load_be64(p + 64);
  if (h.cluster_bits < k_min_cluster_bits || h.cluster_bits > k_max_cluster_bits) {
    return corrupt("cluster_bits " + std::to_string(h.cluster_bits) + " outside 9..21");
  }
  const std::uint64_t cs = h.cluster_size();
  if (h.version == 2) {
    h.header_length = k_v2_header_length;
    h.refcount_order = 4;
    h.incompatible_features = h.compatible_features = h.autoclear_features = 0;
  } else {
    if (c0.size() < k_v3_min_header_length) {
      return corrupt("file too small for a v3 header");
    }
    h.incompatible_features = load_be64(p + 72);
    h.compatible_features = load_be64(p + 80);
    h.autoclear_features = load_be64(p + 88);
    h.refcount_order = load_be32(p + 96);
    h.header_length = load_be32(p + 100);
    if (h.header_length < k_v3_min_header_length || h.header_length % 8 != 0 || h.header_length > cs ||
        h.header_length > c0.size()) {
      return corrupt("invalid header_length " + std::to_string(h.header_length));
    }
    if (h.header_length > 104) {
      std::uint8_t t = p[104];
      if (t > 1) {
        return refuse("unknown compression type " + std::to_string(t));
      }
      h.compression_type = static_cast<CompressionType>(t);
    }
  }
  if (h.crypt_method != 0) {
    return refuse("encrypted images are not supported (crypt_method " + std::to_string(h.crypt_method) + ")");
  }
  if ((h.incompatible_features & k_incompat_data_file) != 0) {
    return refuse("images with an external data file are not supported");
  }
  if ((h.incompatible_features & ~k_incompat_known) != 0) {
    return refuse("unknown incompatible feature bits 0x" +
                  fmt_hex(h.incompatible_features & ~k_incompat_known));
  }
  bool bit3 = (h.incompatible_features & k_incompat_compression) != 0;
  if (bit3 != (h.compression_type != CompressionType::zlib)) {
    return corrupt("compression type field and incompatible bit 3 disagree");
  }
  if (h.extended_l2() && h.cluster_bits < 14) {
    return corrupt("extended L2 entries need clusters of at least 16 KiB");
  }
  if (h.refcount_order > k_max_refcount_order) {
    return corrupt("refcount_order " + std::to_string(h.refcount_order) + " is above 6");
  }
  if (h.size > k_max_virtual_size) {
    return corrupt("virtual size " + std::to_string(h.size) + " is absurd");
  }
  if (h.l1_size < l1_entries_for(h.size, h.cluster_bits, h.extended_l2())) {
    return corrupt("L1 table (" + std::to_string(h.l1_size) + " entries) too small for the virtual size");
  }
  if (std::uint64_t{h.l1_size} * k_table_entry_bytes > k_max_l1_bytes) {
    return corrupt("L1 table of " + std::to_string(h.l1_size) + " entries is too large");
  }
  if (h.l1_size > 0) {
    UTSUSHI_TRY(check_table("L1 table", h.l1_table_offset, std::uint64_t{h.l1_size} * k_table_entry_bytes, cs,
                            file_size, bounds));
  }
  if (h.refcount_table_clusters == 0 || std::uint64_t{h.refcount_table_clusters} * cs > k_max_reftable_bytes) {
    return corrupt("refcount table of " + std::to_string(h.refcount_table_clusters) + " clusters is invalid");
  }
  UTSUSHI_TRY(check_table("refcount table", h.refcount_table_offset, std::uint64_t{h.refcount_table_clusters} * cs,
                          cs, file_size, bounds));
  if (h.nb_snapshots > k_max_snapshots) {
    return corrupt("too many snapshots (" + std::to_string(h.nb_snapshots) + ")");
  }
  if (h.nb_snapshots > 0 && !aligned(h.snapshots_offset, cs)) {
    return corrupt("snapshot table is not cluster aligned");
  }
  if (h.backing_file_offset != 0) {
    if (h.backing_file_size == 0 || h.backing_file_size > k_max_backing_name ||
        h.backing_file_offset > cs || h.backing_file_size > cs - h.backing_file_offset ||
        h.backing_file_offset + h.backing_file_size > c0.size()) {
      return corrupt("invalid backing file name location");
    }
  }
  return h;
}

std::string fmt_hex(std::uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), digits[v & 15]);
    v >>= 4;
  } while (v != 0);
  return s;
}

void encode_header(const Header& h, std::vector<std::uint8_t>& out) {
  if (out.size() < k_qemu_header_length) {
    out.resize(k_qemu_header_length, 0);
  }
  std::uint8_t* p = out.data();
  std::memset(p, 0, k_qemu_header_length);
  store_be32(p, k_magic);
  store_be32(p + 4, 3);
  store_be64(p + 8, h.backing_file_offset);
  store_be32(p + 16, h.backing_file_size);
  store_be32(p + 20, h.cluster_bits);
  store_be64(p + 24, h.size);
  store_be32(p + 32, 0);
  store_be32(p + 36, h.l1_size);
  store_be64(p + 40, h.l1_table_offset);
  store_be64(p + 48, h.refcount_table_offset);
  store_be32(p + 56, h.refcount_table_clusters);
  store_be32(p + 60, h.nb_snapshots);
  store_be64(p + 64, h.snapshots_offset);
  store_be64(p + 72, h.incompatible_features);
  store_be64(p + 80, h.compatible_features);
  store_be64(p + 88, h.autoclear_features);
  store_be32(p + 96, h.refcount_order);
  store_be32(p + 100, k_qemu_header_length);
  p[104] = static_cast<std::uint8_t>(h.compression_type);
}

Result<HeaderExtensions> decode_extensions(const Header& h, std::span<const std::uint8_t> c0) {
  HeaderExtensions ext;  // v2 images have them too, right after the 72-byte header
  std::uint64_t end = std::min<std::uint64_t>(c0.size(), h.cluster_size());
  if (h.backing_file_offset != 0) {
    end = std::min(end, h.backing_file_offset);
  }
  std::uint64_t pos = h.header_length;
  while (pos + 8 <= end) {
    std::uint32_t type = load_be32(c0.data() + pos);
    std::uint32_t len = load_be32(c0.data() + pos + 4);
    pos += 8;
    if (type == k_ext_end) {
      return ext;
    }
    if (len > end - pos) {
      return corrupt("header extension 0x" + fmt_hex(type) + " of " + std::to_string(len) +
                     " bytes overruns the header cluster");
    }
    const char* data = reinterpret_cast<const char*>(c0.data() + pos);
    switch (type) {
      case k_ext_backing_format:
        ext.backing_format = std::string(data, len);
        break;
      case k_ext_bitmaps:
        ext.has_bitmaps = true;
        break;
      case k_ext_data_file:
        ext.has_data_file = true;
        break;
      default:
        break;  // feature table, crypto (refused via crypt_method), unknown: skipped
    }
    pos += (std::uint64_t{len} + 7) & ~std::uint64_t{7};
  }
  return ext;
}

CompressedLayout compressed_layout(std::uint32_t cluster_bits) noexcept {
  CompressedLayout l;
  l.csize_shift = 62 - (cluster_bits - 8);
  l.csize_mask = (1ull << (cluster_bits - 8)) - 1;
  l.offset_mask = (1ull << l.csize_shift) - 1;
  return l;
}

CompressedRef decode_compressed(std::uint64_t e, const CompressedLayout& l) noexcept {
  CompressedRef r;
  r.host_offset = e & l.offset_mask;
  std::uint64_t sectors = ((e >> l.csize_shift) & l.csize_mask) + 1;
  r.max_bytes = sectors * 512 - (r.host_offset & 511);
  return r;
}

std::uint64_t encode_compressed(std::uint64_t host_offset, std::uint64_t length, const CompressedLayout& l) noexcept {
  std::uint64_t nb = ((host_offset + length - 1) >> 9) - (host_offset >> 9);
  return host_offset | k_oflag_compressed | (nb << l.csize_shift);
}

Result<std::vector<Snapshot>> decode_snapshots(std::span<const std::uint8_t> t, std::uint32_t count,
                                               std::uint64_t& consumed) {
  std::vector<Snapshot> out;
  std::uint64_t pos = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (t.size() < k_snapshot_header_bytes || pos > t.size() - k_snapshot_header_bytes) {
      return corrupt("snapshot table truncated at entry " + std::to_string(i));
    }
    const std::uint8_t* p = t.data() + pos;
    Snapshot s;
    s.entry_offset = pos;
    s.l1_table_offset = load_be64(p);
    s.l1_size = load_be32(p + 8);
    std::uint16_t id_len = load_be16(p + 12);
    std::uint16_t name_len = load_be16(p + 14);
    s.date_sec = load_be32(p + 16);
    s.date_nsec = load_be32(p + 20);
    s.vm_clock_nsec = load_be64(p + 24);
    s.vm_state_size = load_be32(p + 32);
    std::uint32_t extra = load_be32(p + 36);
    if (extra > 1024) {
      return corrupt("snapshot extra data too large");
    }
    std::uint64_t entry = k_snapshot_header_bytes + std::uint64_t{extra} + id_len + name_len;
    if (entry > t.size() - pos) {
      return corrupt("snapshot table truncated at entry " + std::to_string(i));
    }
    if (extra >= 8) {
      s.vm_state_size = load_be64(p + 40);
    }
    if (extra >= 16) {
      s.disk_size = load_be64(p + 48);
    }
    s.id.assign(reinterpret_cast<const char*>(p + 40 + extra), id_len);
    s.name.assign(reinterpret_cast<const char*>(p + 40 + extra + id_len), name_len);
    pos += (entry + 7) & ~std::uint64_t{7};
    out.push_back(std::move(s));
  }
  consumed = pos;
  return out;
}

std::uint64_t get_refcount(std::span<const std::uint8_t> b, std::uint64_t index, unsigned order) noexcept {
  if (order < 3) {
    unsigned bits = 1u << order;
    std::uint64_t bit = index * bits;
    return (b[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
  }
  std::uint64_t bytes = 1ull << (order - 3);
  const std::uint8_t* p = b.data() + index * bytes;
  std::uint64_t v = 0;
  for (std::uint64_t i = 0; i < bytes; ++i) {
    v = (v << 8) | p[i];
  }
  return v;
}

void set_refcount(std::span<std::uint8_t> b, std::uint64_t index, unsigned order, std::uint64_t value) noexcept {
  if (order < 3) {
    unsigned bits = 1u << order;
    std::uint64_t bit = index * bits;
    unsigned mask = ((1u << bits) - 1) << (bit % 8);
    b[bit / 8] = static_cast<std::uint8_t>((b[bit / 8] & ~mask) | ((value << (bit % 8)) & mask));
    return;
  }
  std::uint64_t bytes = 1ull << (order - 3);
  std::uint8_t* p = b.data() + index * bytes;
  for (std::uint64_t i = bytes; i-- > 0;) {
    p[i] = static_cast<std::uint8_t>(value);
    value >>= 8;
  }
}

}  // namespace utsushi::imagefmt::qcow2
