#pragma once
// qcow2 on-disk layout: constants, the header, and pure encode/decode
// functions. Everything here follows QEMU's docs/interop/qcow2.txt (cited by
// section) and block/qcow2.h; all integers are big-endian.
// Decoders validate what they decode and return Errc::corruption (malformed)
// or Errc::not_supported (valid but refused: encryption, external data files,
// unknown incompatible features). They never trust an offset or a length
// before checking it for overflow.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "utsushi/common/endian.h"
#include "utsushi/common/error.h"

namespace utsushi::imagefmt::qcow2 {

// --- Header (qcow2.txt "Header") -------------------------------------------
inline constexpr std::uint32_t k_magic = 0x514649FB;  // "QFI\xfb"
inline constexpr std::uint32_t k_v2_header_length = 72;
inline constexpr std::uint32_t k_v3_min_header_length = 104;
inline constexpr std::uint32_t k_qemu_header_length = 112;  // QEMU's QCowHeader incl. compression_type + padding
inline constexpr std::uint32_t k_min_cluster_bits = 9;      // QEMU MIN_CLUSTER_BITS
inline constexpr std::uint32_t k_max_cluster_bits = 21;     // QEMU MAX_CLUSTER_BITS
inline constexpr std::uint32_t k_max_backing_name = 1023;   // qcow2.txt: backing_file_size <= 1023
inline constexpr std::uint32_t k_max_refcount_order = 6;
inline constexpr std::uint64_t k_max_l1_bytes = 32u << 20;        // QEMU QCOW_MAX_L1_SIZE
inline constexpr std::uint64_t k_max_reftable_bytes = 8u << 20;   // QEMU QCOW_MAX_REFTABLE_SIZE
inline constexpr std::uint32_t k_max_snapshots = 65536;           // QEMU QCOW_MAX_SNAPSHOTS
inline constexpr std::uint64_t k_max_virtual_size = 1ull << 56;   // offsets use bits 9-55
inline constexpr std::uint64_t k_sector_size = 512;  // QEMU's unit of image size and of compressed lengths
// Table entries (qcow2.txt "Cluster mapping", "Host cluster management"): L1,
// standard L2 and refcount table entries are one big-endian 64-bit word;
// extended L2 entries are two.
inline constexpr std::uint64_t k_table_entry_bytes = 8;
static_assert(k_table_entry_bytes == sizeof(std::uint64_t), "qcow2 table entries are 64-bit words");
// The header fields decode_header and encode_header use: the v2 header ends
// after snapshots_offset (byte 64 + 8), v3 adds five fields up to
// header_length (byte 100 + 4), QEMU's adds the compression type byte and
// seven bytes of padding. The smallest cluster holds QEMU's header.
static_assert(k_v2_header_length == 64 + 8, "v2 header ends after snapshots_offset");
static_assert(k_v3_min_header_length == 100 + 4, "v3 header ends after header_length");
static_assert(k_qemu_header_length == k_v3_min_header_length + 1 + 7, "compression type and padding");
static_assert(k_qemu_header_length <= (1u << k_min_cluster_bits), "the header fits in the smallest cluster 0");

// Incompatible feature bits (qcow2.txt "incompatible_features").
inline constexpr std::uint64_t k_incompat_dirty = 1ull << 0;
inline constexpr std::uint64_t k_incompat_corrupt = 1ull << 1;
inline constexpr std::uint64_t k_incompat_data_file = 1ull << 2;
inline constexpr std::uint64_t k_incompat_compression = 1ull << 3;
inline constexpr std::uint64_t k_incompat_extl2 = 1ull << 4;
inline constexpr std::uint64_t k_incompat_known = 0x1F;
inline constexpr std::uint64_t k_compat_lazy_refcounts = 1ull << 0;

enum class CompressionType : std::uint8_t { zlib = 0, zstd = 1 };

// Header extension types (qcow2.txt "Header extensions").
inline constexpr std::uint32_t k_ext_end = 0x00000000;
inline constexpr std::uint32_t k_ext_backing_format = 0xe2792aca;
inline constexpr std::uint32_t k_ext_feature_table = 0x6803f857;
inline constexpr std::uint32_t k_ext_bitmaps = 0x23852875;
inline constexpr std::uint32_t k_ext_crypto = 0x0537be77;
inline constexpr std::uint32_t k_ext_data_file = 0x44415441;

// --- L1/L2 entries (qcow2.txt "Cluster mapping") ----------------------------
inline constexpr std::uint64_t k_l1e_offset_mask = 0x00fffffffffffe00ull;
inline constexpr std::uint64_t k_l1e_reserved_mask = 0x7f000000000001ffull;
inline constexpr std::uint64_t k_l2e_offset_mask = 0x00fffffffffffe00ull;
inline constexpr std::uint64_t k_l2e_std_reserved_mask = 0x3f000000000001feull;
inline constexpr std::uint64_t k_oflag_copied = 1ull << 63;
inline constexpr std::uint64_t k_oflag_compressed = 1ull << 62;
inline constexpr std::uint64_t k_oflag_zero = 1ull << 0;
inline constexpr std::uint64_t k_reft_offset_mask = 0xfffffffffffffe00ull;
inline constexpr std::uint64_t k_reft_reserved_mask = 0x1ffull;
inline constexpr unsigned k_subclusters = 32;  // extended L2 (qcow2.txt "Extended L2 Entries")

struct Header {
  std::uint32_t version = 3;
  std::uint64_t backing_file_offset = 0;
  std::uint32_t backing_file_size = 0;
  std::uint32_t cluster_bits = 16;
  std::uint64_t size = 0;
  std::uint32_t crypt_method = 0;
  std::uint32_t l1_size = 0;
  std::uint64_t l1_table_offset = 0;
  std::uint64_t refcount_table_offset = 0;
  std::uint32_t refcount_table_clusters = 0;
  std::uint32_t nb_snapshots = 0;
  std::uint64_t snapshots_offset = 0;
  std::uint64_t incompatible_features = 0;
  std::uint64_t compatible_features = 0;
  std::uint64_t autoclear_features = 0;
  std::uint32_t refcount_order = 4;
  std::uint32_t header_length = k_qemu_header_length;
  CompressionType compression_type = CompressionType::zlib;

  std::uint64_t cluster_size() const noexcept { return 1ull << cluster_bits; }
  bool extended_l2() const noexcept { return (incompatible_features & k_incompat_extl2) != 0; }
  // Bytes per L2 entry (8, or 16 with extended L2) and entries per L2 table.
  std::uint64_t l2_entry_bytes() const noexcept { return extended_l2() ? 16 : 8; }
  std::uint64_t l2_entries() const noexcept { return cluster_size() / l2_entry_bytes(); }
  std::uint32_t refcount_bits() const noexcept { return 1u << refcount_order; }
};

// Whether decode_header requires the L1 and refcount tables inside the file:
// a reader does; a check (like qemu-img check) opens a truncated image and
// reports every reference past its end instead.
enum class TableBounds : std::uint8_t { inside_file, anywhere };

// Decodes and validates the fixed header (first 72/104+ bytes of `cluster0`),
// given the image file size. Checks: magic, version, cluster_bits range,
// header_length, feature bits, refcount_order, compression type byte vs bit 3,
// L1 size covers the virtual size, table offsets aligned and their byte
// ranges free of overflow (and inside the file, per `bounds`). Refuses
// encryption and external data files.
[[nodiscard]] Result<Header> decode_header(std::span<const std::uint8_t> cluster0, std::uint64_t file_size,
                                           TableBounds bounds = TableBounds::inside_file);

// Encodes a v3 header of QEMU's length (112 bytes) into `out` (resized to at least 112).
void encode_header(const Header& h, std::vector<std::uint8_t>& out);

struct HeaderExtensions {
  std::optional<std::string> backing_format;
  bool has_bitmaps = false;
  bool has_data_file = false;
};

// Parses the extension area after the header, up to the end of cluster 0 (or
// the backing file name, whichever comes first).
[[nodiscard]] Result<HeaderExtensions> decode_extensions(const Header& h, std::span<const std::uint8_t> cluster0);

// Minimum L1 entries for a virtual size (qcow2.txt: L1 must cover the image).
std::uint64_t l1_entries_for(std::uint64_t size, std::uint32_t cluster_bits, bool extended_l2) noexcept;

// --- Compressed cluster descriptor (qcow2.txt "Compressed Clusters Descriptor")
struct CompressedLayout {
  unsigned csize_shift;          // 62 - (cluster_bits - 8)
  std::uint64_t csize_mask;      // (1 << (cluster_bits - 8)) - 1
  std::uint64_t offset_mask;     // (1 << csize_shift) - 1
};
CompressedLayout compressed_layout(std::uint32_t cluster_bits) noexcept;

struct CompressedRef {
  std::uint64_t host_offset;  // byte offset of the compressed stream
  std::uint64_t max_bytes;    // bytes to read: whole 512-byte sectors from host_offset's sector
};
CompressedRef decode_compressed(std::uint64_t l2_entry, const CompressedLayout& layout) noexcept;
// The L2 entry for `length` compressed bytes at `host_offset` (never COPIED).
std::uint64_t encode_compressed(std::uint64_t host_offset, std::uint64_t length, const CompressedLayout& layout) noexcept;

// --- Snapshot table (qcow2.txt "Snapshot table") ----------------------------
struct Snapshot {
  std::uint64_t l1_table_offset = 0;
  std::uint32_t l1_size = 0;
  std::string id;
  std::string name;
  std::uint32_t date_sec = 0;
  std::uint32_t date_nsec = 0;
  std::uint64_t vm_clock_nsec = 0;
  std::uint64_t vm_state_size = 0;
  std::uint64_t disk_size = 0;  // 0 when absent
  std::uint64_t entry_offset = 0;  // where this entry starts, from the start of the table
};
// The fixed part of an entry: l1_table_offset (8), l1_size, id_str_size,
// name_size (4, 2, 2), date_sec, date_nsec (4, 4), vm_clock_nsec (8),
// vm_state_size, extra_data_size (4, 4).
inline constexpr std::uint64_t k_snapshot_header_bytes = 40;
static_assert(k_snapshot_header_bytes == 8 + 4 + 2 + 2 + 4 + 4 + 8 + 4 + 4, "snapshot table entry, fixed part");
// Decodes `count` entries from `table` (read from snapshots_offset); sets
// `consumed` to the table's length in bytes.
[[nodiscard]] Result<std::vector<Snapshot>> decode_snapshots(std::span<const std::uint8_t> table, std::uint32_t count,
                                                             std::uint64_t& consumed);

// --- Refcount blocks (qcow2.txt "Host cluster management") -------------------
// Reads entry `index` of a refcount block with 2^order-bit entries.
std::uint64_t get_refcount(std::span<const std::uint8_t> block, std::uint64_t index, unsigned order) noexcept;
void set_refcount(std::span<std::uint8_t> block, std::uint64_t index, unsigned order, std::uint64_t value) noexcept;

// Lower-case hexadecimal, for messages.
std::string fmt_hex(std::uint64_t v);

}  // namespace utsushi::imagefmt::qcow2
