#pragma once
// Link batch compression with a level that follows the bottleneck.
//
// BatchCompressor turns each token batch into one zstd flush block of a
// running zstd frame (so matches reach back across batches, up to the window).
// zstd applies a new level only at a frame start, so after set_level() the
// next batch first ends the running frame; the receiver's streaming decoder
// reads concatenated frames, so the wire format does not change.
//
// LevelController decides the level, per window until it knows the link's
// rate, then per batch.
//
// Per window (>= 250 ms) it compares how long zstd took for the batches
// (compress_s) with how long the link took to ship frames (ship_s, time
// inside Link::send, which includes back-pressure from a slow link or
// receiver). A link busy >= 70% of the window is the bottleneck; its rate is
// then shipped bytes / ship_s. A link busy < 30%, or one zstd held back (the
// step-down rule below), is not: its rate is unknown again (it may have
// become faster than the rate learned). While the rate is unknown the window
// decides:
//   link busy >= 70% and compress_s < 0.45 * ship_s          -> one step up
//   link busy >= 50% and compress_s > 0.85 * ship_s, or the
//   link busy < 50% while zstd was busy more than half of it  -> one step down
//
// Per batch (on_batch), once the rate is known: the pump's time for the batch
// (parse, encode, compress; not its waits for QEMU or for the link) against
// the time the link needs for the batch's compressed bytes, r = busy / link.
// Guest memory changes content from one region to the next (random buffers,
// text, kernel), and zstd's speed with it; a window notices too late, when
// the link has run dry. So:
//   r > 2.5                                  -> two steps down at once
//   r > 1.5, or r > 1 for two batches running -> one step down at once
//   r < 0.5 for three batches running         -> one step up
// The CPU. When the machine's CPUs have (almost) no idle time left in a
// window (cpu_idle below k_saturated_idle), a higher level takes CPU time
// from the guest's QEMU, which writes the stream, and from whatever else runs
// there (a busy guest's vCPUs; the receiver too when both ends share a host):
// the link runs dry while zstd itself still looks fast enough. So while the
// CPU is saturated the level never steps up (per window or per batch), and a
// window in which the link was not the bottleneck (busy < 70%) steps it one
// down, whatever the batches say. (Issue 14's busy guest on 2 cores: levels
// 5-9 left the link idle a third of the time.)
// Only batches of at least k_judged_batch bytes (or the whole batch limit, if
// smaller) are judged: a small batch, flushed early because QEMU paused, says
// more about QEMU than about zstd.
// It starts at level 3 (zstd's default, several times faster than a 1 Gbit/s
// link needs on any current core), or within [min, max]. A pinned level
// (min == max) never learns a rate and never moves.
// Steps follow zstd's strategy classes, bounded by [min, max]:
// 1, 3, 5, 7, 9, 12, 15, 19. min == max pins the level (--zstd-level).

#include <array>
#include <chrono>
#include <cstdint>
#include <span>

#include "utsushi/common/error.h"
#include "utsushi/common/handles.h"
#include "utsushi/common/endian.h"
#include "utsushi/livemig/shipper.h"

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
  double ship_s = 0;      // time inside Link::send, counted when a send ends (so a
                          // send spanning two windows counts in the later one)
  double shipped = 0;     // bytes Link::send took in the window (0: unknown)
  double cpu_idle = -1;   // the machine's idle share of CPU time in the window
                          // (0..1, all CPUs); negative: unknown
};

// The levels a stream's controller may use: `pinned` (--zstd-level, > 0)
// fixes it, else 1 up to `max_level` (--zstd-max-level, at least 1).
struct LevelBounds {
  int min = 1;
  int max = 9;
};
constexpr LevelBounds level_bounds(int pinned, int max_level) noexcept {
  return pinned > 0 ? LevelBounds{pinned, pinned} : LevelBounds{1, max_level > 1 ? max_level : 1};
}

class LevelController {
 public:
  LevelController(int min_level, int max_level) noexcept;
  int level() const noexcept { return m_level; }
  // Returns the level for the next batches.
  int update(const LevelWindow& w) noexcept;
  // One batch: `busy_s` of pump time produced `wire` bytes for the link.
  // Returns the level for the next batch.
  int on_batch(double busy_s, double wire) noexcept;
  // Bytes per second the link ships while it is the bottleneck; 0: unknown.
  double link_rate() const noexcept { return m_link_rate; }
  static constexpr std::array<int, 8> k_ladder{1, 3, 5, 7, 9, 12, 15, 19};
  static constexpr int k_start = 3;
  static constexpr std::size_t k_judged_batch = 128 * 1024;
  static constexpr double k_saturated_idle = 0.05;
  // The last window found the CPU saturated (then the level does not rise).
  bool cpu_saturated() const noexcept { return m_cpu_saturated; }

 private:
  void step_down(int rungs) noexcept;
  void step_up() noexcept;

  int m_min;
  int m_max;
  int m_level;
  double m_link_rate = 0;
  int m_slow_run = 0;  // batches running with r > 1
  int m_fast_run = 0;  // batches running with r < 0.5
  bool m_cpu_saturated = false;
};

// Feeds a LevelController from one pipeline (the pump's memory batches, a
// disk pass's batches): each judged batch's own figures (on_batch), then,
// once a window of at least k_window has passed, the window's zstd time, the
// shipper's send time and bytes, and the machine's idle CPU share
// (/proc/stat) (update).
class LevelFollower {
 public:
  static constexpr double k_window = 0.25;  // seconds
  LevelFollower(LevelController& levels, const Shipper& shipper);
  // One batch: zstd took `compress_s`, the stage's own time for it (not its
  // waits for input or for the link) was `busy_s`, and it gave `wire` bytes
  // for the link; a batch of fewer than `judged_from` raw bytes is not judged
  // on its own. Returns the level for the next batch.
  int after_batch(std::size_t raw, double compress_s, double busy_s, double wire, std::size_t judged_from);

 private:
  LevelController& m_levels;
  const Shipper& m_shipper;
  std::chrono::steady_clock::time_point m_start;
  std::uint64_t m_cpu_idle = 0;
  std::uint64_t m_cpu_total = 0;
  double m_compress_s = 0;
  std::uint64_t m_ship_ns = 0;
  std::uint64_t m_shipped = 0;
};

}  // namespace utsushi::livemig
