#pragma once
// Verifying a copy: every byte range of one device against another, chunk by
// chunk (4 MiB, XXH64), on every core. Used by p2v capture --verify (source
// against image) and v2p restore --verify (restored view against the target).

#include <cstdint>

#include "utsushi/common/progress.h"
#include "utsushi/disk/byte_ranges.h"
#include "utsushi/imagefmt/block_device.h"

namespace utsushi::disk {

struct VerifyStats {
  std::uint64_t chunks = 0;
  std::uint64_t bytes = 0;
};

// Reads `ranges` from both devices and compares them. Errc::corruption names
// `actual`'s description and the first mismatching chunk's offset;
// out_of_range when a range leaves either device; cancelled on SIGINT/SIGTERM.
// `threads` 0: one per core, at least 4 (the reads overlap).
[[nodiscard]] Result<VerifyStats> verify_ranges(imagefmt::BlockDevice& expected, imagefmt::BlockDevice& actual,
                                                const ByteRanges& ranges, unsigned threads = 0,
                                                ProgressFn progress = {});

}  // namespace utsushi::disk
