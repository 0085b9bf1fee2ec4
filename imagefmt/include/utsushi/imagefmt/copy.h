#pragma once
// copy_device: copies the guest-visible contents of one device to another of
// the same size, reading only what the source's extents say holds data,
// skipping all-zero chunks (is_all_zero), and using every core: worker threads
// take chunks from a shared cursor and read, test and write them in parallel
// (both devices' front ends serialise drivers that are not thread-safe).
// Cancellation (SIGINT/SIGTERM) is checked between chunks.

#include <cstdint>

#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/block_device.h"

namespace utsushi::imagefmt {

struct CopyOptions {
  // The destination already reads as zeros everywhere (a fresh sparse file or
  // a new image): zero ranges are skipped instead of written.
  bool target_is_zeroed = true;
  // With target_is_zeroed false: ranges the source reports as holes (not
  // zero) are discarded rather than zeroed; they need not read as zeros
  // (v2p restore: space outside every partition).
  bool discard_holes = false;
  // Flush the target at the end (false: the caller flushes, e.g. overlapped
  // with the next copy).
  bool flush = true;
  std::size_t chunk_size = 4u << 20;
  unsigned threads = 0;  // 0: one per core
  ProgressFn progress;   // bytes of the source processed / source size
};

struct CopyStats {
  std::uint64_t bytes_read = 0;     // read from the source
  std::uint64_t bytes_written = 0;  // data written to the destination
  std::uint64_t bytes_zero = 0;     // found zero (by extents or by content) and not written
  std::uint64_t bytes_discarded = 0;  // holes discarded (discard_holes), included in bytes_zero
};

[[nodiscard]] Result<CopyStats> copy_device(BlockDevice& source, BlockDevice& target, const CopyOptions& options = {});

}  // namespace utsushi::imagefmt
