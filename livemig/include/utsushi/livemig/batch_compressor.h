#pragma once
// Link batch compression with a level that follows the bottleneck.
//
// BatchCompressor turns each token batch into one zstd flush block of a
// running zstd frame (so matches reach back across batches, up to the window).
// zstd applies a new level only at a frame start, so after set_level() the
// next batch first ends the running frame; the receiver's streaming decoder
// reads concatenated frames, so the wire format does not change.
//
// LevelController decides the level from two measured times over a window
// (default >= 250 ms): how long zstd took for the batches (compress_s) and
// how long the link took to ship frames (ship_s, time inside Link::send,
// which includes back-pressure from a slow link or receiver). The link is the
// bottleneck when it was busy most of the window; then spare compressor time
// buys fewer bytes:
//   link busy >= 70% of the window and compress_s < 0.45 * ship_s -> one step up
//   compress_s > 0.85 * ship_s, or the link idle more than half of the window
//   while zstd was busy more than half of it                      -> one step down
// Steps follow zstd's strategy classes, bounded by [min, max]:
// 1, 3, 5, 7, 9, 12, 15, 19. min == max pins the level (--zstd-level).

#include <array>
#include <cstdint>
#include <span>

#include "utsushi/common/error.h"
#include "utsushi/common/handles.h"
#include "utsushi/livemig/bytes.h"

namespace utsushi::livemig {

// Raw (token) bytes compressed at each zstd level; index = level.
using ZstdLevelBytes = std::array<std::uint64_t, 23>;

class BatchCompressor {
 public:
  explicit BatchCompressor(int level, int window_log = 23);
  // Replaces `out` with the compressed form of `batch`.
  [[nodiscard]] Result<void> compress(std::span<const std::uint8_t> batch, Bytes& out);
  void set_level(int level) noexcept { m_next_level = level; }
  int level() const noexcept { return m_next_level; }

 private:
  ZstdCCtx m_cctx;
  int m_level;
  int m_next_level;
  bool m_frame_open = false;
};

struct LevelWindow {
  double wall_s = 0;      // length of the window
  double compress_s = 0;  // time inside zstd
  double ship_s = 0;      // time inside Link::send (one thread, so <= wall_s)
};

class LevelController {
 public:
  LevelController(int min_level, int max_level) noexcept;
  int level() const noexcept { return m_level; }
  // Returns the level for the next batches.
  int update(const LevelWindow& w) noexcept;
  static constexpr std::array<int, 8> k_ladder{1, 3, 5, 7, 9, 12, 15, 19};

 private:
  int m_min;
  int m_max;
  int m_level;
};

}  // namespace utsushi::livemig
