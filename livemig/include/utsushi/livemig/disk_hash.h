#pragma once
// DiskWriteHash: the per-disk content hash of the ranges a disk pre-copy
// wrote, which both ends compute (the sender over what it sends, the receiver
// over what it wrote) and compare before the destination may run.
//
// Definition. Every range is cut at multiples of k_disk_hash_granule; each
// piece contributes XXH3-128(offset, length, XXH3-128(its bytes)), and the
// hash is the sum of all contributions modulo 2^128. So:
//   - the order in which ranges are added does not matter (receivers may
//     write batches in any order);
//   - a range cut anywhere on a granule boundary hashes as the whole range
//     (batches may split ranges there);
//   - a zero range hashes as a data range of zeros (the hash is of content);
//   - a range written twice counts twice (the hash is of the writes, so both
//     ends must have seen the same passes, not only the same final image).
// A contribution depends on the offset, so moving bytes changes the hash.
//
// Not thread-safe: one thread adds to one hash at a time.

#include <cstdint>
#include <span>
#include <string>

#include "utsushi/livemig/disk_message.h"

namespace utsushi::livemig {

inline constexpr std::uint64_t k_disk_hash_granule = 64 * 1024;

class DiskWriteHash {
 public:
  // Adds the data range [offset, offset + bytes.size()).
  void add_data(std::uint64_t offset, std::span<const std::uint8_t> bytes) noexcept;
  // Adds a range of `length` zero bytes at `offset`.
  void add_zero(std::uint64_t offset, std::uint64_t length) noexcept;
  // Adds every range of a batch (its data bytes in table order). REQUIRES: a
  // batch of data and zero ranges only (copy ranges resolved: block_index.h's
  // resolve_copies) whose data holds exactly the data ranges' bytes.
  void add(const DiskBatch& batch) noexcept;

  std::uint64_t low() const noexcept { return m_low; }
  std::uint64_t high() const noexcept { return m_high; }
  // 32 hex digits, high half first.
  std::string hex() const;

  friend bool operator==(const DiskWriteHash&, const DiskWriteHash&) = default;

 private:
  void add_piece(std::uint64_t offset, std::uint64_t length, std::uint64_t content_low,
                 std::uint64_t content_high) noexcept;

  std::uint64_t m_low = 0;
  std::uint64_t m_high = 0;
};

}  // namespace utsushi::livemig
