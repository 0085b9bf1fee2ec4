#pragma once
// VMDK: hosted sparse extents ("KDMV"): reading monolithicSparse and
// streamOptimized images, and writing streamOptimized ones.
//
// Layout (little-endian, 512-byte sectors): vmware/open-vmdk
// vmdk/vmware_vmdk.h (SparseExtentHeader, markers) and VMware's "Virtual Disk
// Format 5.0" specification. The writer follows the layout open-vmdk writes
// and VMware products import: header, embedded descriptor at sector 1 (20
// sectors), grain directory at sector 21, every grain table pre-allocated
// after it (so a reader finds all metadata at the start, without the
// footer), then the grains (12-byte marker + zlib stream, RFC 1950, padded to
// a sector; all-zero grains are skipped), then an end-of-stream marker.
// Version 3, flags 0x30001, 64 KiB grains, 512 GTEs. The header is written
// last, so an interrupted writer leaves no valid image.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "utsushi/common/endian.h"
#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/block_device.h"
#include "utsushi/imagefmt/registry.h"

namespace utsushi::imagefmt {

namespace vmdk {
inline constexpr std::uint32_t k_magic = 0x564d444b;  // "KDMV" on disk
inline constexpr std::uint32_t k_flag_newline_test = 1u << 0;
inline constexpr std::uint32_t k_flag_redundant_gd = 1u << 1;
inline constexpr std::uint32_t k_flag_zeroed_gte = 1u << 2;
inline constexpr std::uint32_t k_flag_compressed = 1u << 16;
inline constexpr std::uint32_t k_flag_markers = 1u << 17;
inline constexpr std::uint64_t k_gd_at_end = ~0ull;
inline constexpr std::uint64_t k_sector = 512;
inline constexpr std::uint32_t k_marker_eos = 0;
inline constexpr std::uint32_t k_marker_gt = 1;
inline constexpr std::uint32_t k_marker_gd = 2;
inline constexpr std::uint32_t k_marker_footer = 3;

// On-disk sizes the code relies on (vmware_vmdk.h SparseExtentHeader,
// GrainMarker): the header's last field (compressAlgorithm, a 16-bit value at
// byte 77) ends inside its sector; a grain marker is a 64-bit LBA and a
// 32-bit size; a grain table entry is 32 bits.
inline constexpr std::size_t k_header_used_bytes = 79;
inline constexpr std::size_t k_marker_bytes = 12;
inline constexpr std::size_t k_gte_bytes = 4;
static_assert(k_header_used_bytes <= k_sector, "SparseExtentHeader fits its sector");
static_assert(k_marker_bytes == sizeof(std::uint64_t) + sizeof(std::uint32_t), "GrainMarker: LBA + size");
static_assert(k_gte_bytes == sizeof(std::uint32_t), "grain table entries are sector numbers (32 bits)");

struct Header {
  std::uint32_t version = 3;
  std::uint32_t flags = k_flag_newline_test | k_flag_compressed | k_flag_markers;
  std::uint64_t capacity = 0;    // sectors
  std::uint64_t grain_size = 128;  // sectors
  std::uint64_t descriptor_offset = 1;
  std::uint64_t descriptor_size = 20;
  std::uint32_t num_gtes_per_gt = 512;
  std::uint64_t rgd_offset = 0;
  std::uint64_t gd_offset = 0;
  std::uint64_t overhead = 0;
  std::uint8_t unclean_shutdown = 0;
  std::uint16_t compress_algorithm = 1;  // 1 = deflate
};
// The writer's grain tables are whole sectors, its grains whole sectors.
static_assert(Header{}.num_gtes_per_gt * k_gte_bytes % k_sector == 0, "grain tables fill whole sectors");
static_assert(Header{}.descriptor_size * k_sector >= 2048, "room for the embedded descriptor");

// Decodes and validates a 512-byte SparseExtentHeader.
[[nodiscard]] Result<Header> decode_header(std::span<const std::uint8_t> sector);
void encode_header(const Header& h, std::span<std::uint8_t> sector);

// A text descriptor file ("Virtual Disk Format 5.0" section "The Descriptor
// File"): starts with this line, whatever its length.
inline constexpr std::string_view k_descriptor_signature = "# Disk DescriptorFile";
bool is_descriptor(std::span<const std::uint8_t> head) noexcept;
// The createType value of descriptor text ("monolithicFlat", ...), or empty
// when the text has no createType line.
std::string descriptor_create_type(std::string_view text);
}  // namespace vmdk

// Opens a hosted sparse VMDK read-only (registry entry point). Descriptor
// files of any size (flat, split, ESXi: the disk lives in other files) are
// refused with not_supported naming their createType.
[[nodiscard]] Result<std::unique_ptr<BlockDriver>> open_vmdk(const std::string& path, const OpenOptions& options,
                                                             bool probed);
// The same over any device holding a VMDK (e.g. an OVA member).
[[nodiscard]] Result<std::unique_ptr<BlockDriver>> open_vmdk_on(std::unique_ptr<BlockDevice> file,
                                                                std::string description);

struct VmdkWriteOptions {
  unsigned threads = 0;  // 0: one per core
  int level = 6;         // zlib level
  std::string extent_name;  // file name recorded in the descriptor
  ProgressFn progress;
};

struct VmdkWriteStats {
  std::uint64_t bytes_read = 0;     // source bytes read (data extents only)
  std::uint64_t bytes_written = 0;  // guest bytes stored as grains (before compression)
  std::uint64_t bytes_zero = 0;     // guest bytes not stored (holes and all-zero grains)
  std::uint64_t file_size = 0;      // bytes of the VMDK file
};

// Writes `source` as a streamOptimized VMDK into the empty regular file `fd`.
[[nodiscard]] Result<VmdkWriteStats> write_vmdk_stream_optimized(BlockDevice& source, int fd, const std::string& description,
                                                  const VmdkWriteOptions& options);

}  // namespace utsushi::imagefmt
