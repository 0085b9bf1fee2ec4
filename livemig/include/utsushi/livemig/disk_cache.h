#pragma once
// What livemig remembers about backing files from one process to the next,
// in one directory (docs/ARCHITECTURE.md, "livemig: disks"):
//   - a file's content hash per file version (file_hash.h's key: device,
//     inode, size, modification and change times);
//   - a content's block index (backing_blocks.h), per format and cap.
// The next migration over the same golden image then reads neither the file
// nor its blocks before its bulk pass, on either end. Everything there may be
// deleted at any time: a record that is missing, unreadable, of another shape
// or whose checksum fails is ignored (and written anew). A record that lied
// would make a migration refer to the wrong blocks; the disks' end-of-copy
// hash check (disk_session.h) fails that migration, and the source runs on.
//
// Off until set_disk_cache_dir() names a directory (the CLI's --cache-dir,
// default k_default_disk_cache_dir). The directory is created mode 0700; one
// not owned by this user, or writable by group or others, is not used (a
// warning says so). Records are written atomically (atomic_file.h); at most
// k_max_cached_indexes indexes and k_max_cached_hashes hash records are kept,
// the least recently used removed first. Failures to read or write the cache
// never fail the caller (debug lines say why).
//
// Thread-safe.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/endian.h"
#include "utsushi/common/error.h"
#include "utsushi/livemig/block_index.h"

namespace utsushi::livemig {

inline constexpr std::string_view k_default_disk_cache_dir = "/var/cache/utsushi/livemig";
inline constexpr std::size_t k_max_cached_indexes = 8;
inline constexpr std::size_t k_max_cached_hashes = 256;

// "" turns the cache off (the default).
void set_disk_cache_dir(std::string dir);
[[nodiscard]] std::string disk_cache_dir();

// One version of a file's content, as stat(2) tells it.
struct FileVersion {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_s = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_s = 0;
  std::int64_t ctime_ns = 0;
  friend bool operator==(const FileVersion&, const FileVersion&) = default;
};

// The content hash remembered for `v`, if any.
[[nodiscard]] std::optional<std::string> cached_file_hash(const FileVersion& v);
void cache_file_hash(const FileVersion& v, const std::string& content_hash);

// One indexed block of a backing image: its hash, where the image holds it,
// and its anchor (block_index.h: what with_copies tests first at a sector).
struct IndexedBlock {
  BlockHash hash;
  std::uint64_t offset = 0;
  std::uint64_t anchor = 0;
};

// The index remembered for a content (`format` "qcow2" or "raw",
// `content_hash` 32 lower-case hex digits, else nothing is looked up) built
// with `cap`, if any; its offsets checked against `image_size`.
[[nodiscard]] std::optional<std::vector<IndexedBlock>> cached_block_index(const std::string& format,
                                                                          const std::string& content_hash,
                                                                          std::size_t cap, std::uint64_t image_size);
void cache_block_index(const std::string& format, const std::string& content_hash, std::size_t cap,
                       std::span<const IndexedBlock> entries);

// ---- record layouts (pure) ----
//
// Block index record, little-endian:
//   0   8  magic "UTSBIDX2" (1: entries without the anchor, ignored)
//   8   4  block size (k_ref_block)
//   12  4  zero
//   16  8  cap the index was built with
//   24  8  n, the number of entries
//   32  32*n entries: hash low, hash high, offset, anchor (u64 each), sorted
//          by (high, low), each hash once, offsets multiples of the block size
//   end 8  XXH3-64 of the bytes before it
[[nodiscard]] Bytes encode_block_index(std::size_t cap, std::span<const IndexedBlock> entries);
// Errc::corruption naming what is wrong: size, magic, block size, cap,
// checksum, order, an offset not aligned or past `image_size`.
[[nodiscard]] Result<std::vector<IndexedBlock>> decode_block_index(std::span<const std::uint8_t> record,
                                                                   std::size_t cap, std::uint64_t image_size);

// File hash record: one line, "utsushi-file-hash 1 DEV INO SIZE MS MNS CS CNS HASH\n".
[[nodiscard]] std::string encode_file_hash(const FileVersion& v, const std::string& content_hash);
// The hash when `record` is well formed and names exactly `v`.
[[nodiscard]] std::optional<std::string> decode_file_hash(std::string_view record, const FileVersion& v);

// True for 32 lower-case hex digits (file_hash.h's form).
[[nodiscard]] bool is_content_hash(std::string_view s) noexcept;

}  // namespace utsushi::livemig
