#pragma once
// Which ranges of a source disk a pass sends, from the NBD block status that
// QEMU's export reports (pure functions; nbd_client.h reads the maps).
//
// QEMU 7.2's NBD export (docs/ARCHITECTURE.md, "livemig: disks", verified):
//   base:allocation        the whole backing chain merged: HOLE|ZERO where no
//                          layer has data (or the top has a zero cluster),
//                          data where any layer has some. Cannot tell the top
//                          from its backing files.
//   qemu:allocation-depth  per extent the layer that holds it: 0 nowhere
//                          (reads as zeros), 1 the top image, 2 its backing
//                          file, and so on. Needs allocation-depth=true on
//                          block-export-add.
//   qemu:dirty-bitmap:NAME bit 0 set where the bitmap is dirty (granularity
//                          64 KiB by default).
// The first pass sends the top image only (depth 1): what the backing files
// hold is on the destination already. Inside the chosen ranges, an extent
// that base:allocation reports as ZERO is sent as a zero range, the rest as
// data.
//
// Every map must cover the same disk from offset 0 without gaps (as
// NbdClient::extents returns them); ranges outside a map count as not chosen.

#include <cstdint>
#include <span>
#include <vector>

#include "utsushi/livemig/disk_message.h"

namespace utsushi::livemig {

// One block-status extent: `flags` is the context's value (base:allocation:
// bit 0 HOLE, bit 1 ZERO; allocation-depth: the depth; dirty bitmap: bit 0).
struct NbdExtent {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint32_t flags = 0;

  friend bool operator==(const NbdExtent&, const NbdExtent&) = default;
};

inline constexpr std::uint32_t k_nbd_state_hole = 1;  // base:allocation (NBD_STATE_HOLE)
inline constexpr std::uint32_t k_nbd_state_zero = 2;  // base:allocation (NBD_STATE_ZERO)
inline constexpr std::uint32_t k_nbd_state_dirty = 1; // qemu:dirty-bitmap:NAME
inline constexpr std::uint32_t k_depth_top = 1;       // qemu:allocation-depth: the top image

// The first pass: the ranges the top image holds (depth == 1), each data or
// zero by `allocation`, adjacent ranges of one kind merged, in offset order.
[[nodiscard]] std::vector<DiskRange> top_image_ranges(std::span<const NbdExtent> depth,
                                                      std::span<const NbdExtent> allocation);

// A dirty pass: the ranges the bitmap marks dirty, each data or zero by
// `allocation`, merged and ordered as above.
[[nodiscard]] std::vector<DiskRange> dirty_ranges(std::span<const NbdExtent> dirty,
                                                  std::span<const NbdExtent> allocation);

// The bytes `ranges` carry as data (zero ranges carry none).
[[nodiscard]] std::uint64_t data_bytes(std::span<const DiskRange> ranges) noexcept;

}  // namespace utsushi::livemig
