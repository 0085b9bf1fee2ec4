// Batch compression and the adaptive level (see batch_compressor.h).
#include "utsushi/livemig/batch_compressor.h"

#include <zstd.h>

#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace utsushi::livemig {

namespace {

Result<void> run_zstd(ZSTD_CCtx* cctx, ZSTD_inBuffer& in, Bytes& out, ZSTD_EndDirective mode) {
  for (;;) {
    ZSTD_outBuffer zout{out.data(), out.size(), out.size()};
    out.resize(out.size() + std::max<std::size_t>(ZSTD_compressBound(in.size - in.pos) + 64, 1024));
    zout.dst = out.data();
    zout.size = out.size();
    std::size_t left = ZSTD_compressStream2(cctx, &zout, &in, mode);
    if (ZSTD_isError(left)) {
      return fail(Errc::internal, fmt::format("zstd: {}", ZSTD_getErrorName(left)));
    }
    out.resize(zout.pos);
    if (left == 0 && in.pos == in.size) {
      return {};
    }
  }
}

}  // namespace

BatchCompressor::BatchCompressor(int level, int window_log)
    : m_cctx(ZSTD_createCCtx()), m_level(level), m_next_level(level) {
  ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_windowLog, window_log);
}

Result<void> BatchCompressor::compress(std::span<const std::uint8_t> batch, Bytes& out) {
  out.clear();
  if (m_next_level != m_level) {
    if (m_frame_open) {
      ZSTD_inBuffer none{nullptr, 0, 0};
      UTSUSHI_TRY(run_zstd(m_cctx.get(), none, out, ZSTD_e_end));
    }
    // Parameters other than the level (the window) stay as set.
    ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_compressionLevel, m_next_level);
    m_level = m_next_level;
  }
  ZSTD_inBuffer in{batch.data(), batch.size(), 0};
  UTSUSHI_TRY(run_zstd(m_cctx.get(), in, out, ZSTD_e_flush));
  m_frame_open = true;
  return {};
}

LevelController::LevelController(int min_level, int max_level) noexcept
    : m_min(std::clamp(min_level, 1, 19)),
      m_max(std::clamp(max_level, m_min, 19)),
      m_level(std::clamp(k_start, m_min, m_max)) {}

void LevelController::step_down(int rungs) noexcept {
  for (; rungs > 0 && m_level > m_min; --rungs) {
    // Next rung below, or the minimum (which may sit between rungs).
    int lower = m_min;
    for (int l : k_ladder) {
      if (l < m_level && l > lower) {
        lower = l;
      }
    }
    m_level = lower;
  }
  m_slow_run = m_fast_run = 0;
}

void LevelController::step_up() noexcept {
  // Next rung above, or the maximum (which may sit between rungs).
  int higher = m_max;
  for (auto it = k_ladder.rbegin(); it != k_ladder.rend(); ++it) {
    if (*it > m_level && *it < higher) {
      higher = *it;
    }
  }
  m_level = std::max(m_level, higher);
  m_slow_run = m_fast_run = 0;
}

int LevelController::update(const LevelWindow& w) noexcept {
  if (w.wall_s <= 0 || m_min == m_max) {
    return m_level;
  }
  m_cpu_saturated = w.cpu_idle >= 0 && w.cpu_idle < k_saturated_idle;
  double link_busy = w.ship_s / w.wall_s;
  double zstd_busy = w.compress_s / w.wall_s;
  // zstd held the link back: nearly as slow as a busy link, or busy while
  // the link waited. (A link that is not busy yet, its socket buffers still
  // filling, says nothing about zstd.)
  bool cpu_bound = (link_busy >= 0.5 && w.compress_s > 0.85 * w.ship_s) || (link_busy < 0.5 && zstd_busy > 0.5);
  bool link_bound = link_busy >= 0.7 && w.compress_s < 0.45 * w.ship_s;
  if (link_busy >= 0.7 && w.shipped > 0) {
    double rate = w.shipped / w.ship_s;
    bool comparable = m_link_rate > 0 && m_link_rate < 2 * rate && rate < 2 * m_link_rate;
    m_link_rate = comparable ? 0.7 * m_link_rate + 0.3 * rate : rate;
  } else if (link_busy < 0.3 || cpu_bound) {
    // Not the bottleneck now, or zstd starved it (the link may have become
    // faster than the rate learned): its rate says nothing; windows decide.
    m_link_rate = 0;
  }
  if (m_cpu_saturated && link_busy < 0.7) {
    step_down(1);  // zstd's CPU time is missed elsewhere: the link ran dry
    return m_level;
  }
  if (m_link_rate > 0) {
    return m_level;  // the batches decide
  }
  if (cpu_bound) {
    step_down(1);
  } else if (link_bound && !m_cpu_saturated) {
    step_up();
  }
  return m_level;
}

int LevelController::on_batch(double busy_s, double wire) noexcept {
  if (m_min == m_max || m_link_rate <= 0 || wire <= 0) {
    return m_level;
  }
  double r = busy_s / (wire / m_link_rate);
  m_slow_run = r > 1.0 ? m_slow_run + 1 : 0;
  m_fast_run = r < 0.5 ? m_fast_run + 1 : 0;
  if (r > 2.5) {
    step_down(2);
  } else if (r > 1.5 || m_slow_run >= 2) {
    step_down(1);
  } else if (m_fast_run >= 3 && m_level < m_max && !m_cpu_saturated) {
    step_up();
  }
  return m_level;
}

namespace {

// The machine's CPU time so far, in ticks of all CPUs (/proc/stat's "cpu"
// line): idle (idle + iowait) and total. Zeros when it cannot be read.
struct CpuTicks {
  std::uint64_t idle = 0;
  std::uint64_t total = 0;
};
CpuTicks read_cpu_ticks() {
  std::ifstream in("/proc/stat");
  std::string label;
  CpuTicks t;
  if (!(in >> label) || label != "cpu") {
    return {};
  }
  std::uint64_t v = 0;
  for (int field = 0; field < 8 && in >> v; ++field) {  // user nice system idle iowait irq softirq steal
    t.total += v;
    if (field == 3 || field == 4) {
      t.idle += v;
    }
  }
  return t;
}

}  // namespace

LevelFollower::LevelFollower(LevelController& levels, const Shipper& shipper)
    : m_levels(levels),
      m_shipper(shipper),
      m_start(std::chrono::steady_clock::now()),
      m_ship_ns(shipper.ship_ns()),
      m_shipped(shipper.shipped_bytes()) {
  CpuTicks cpu = read_cpu_ticks();
  m_cpu_idle = cpu.idle;
  m_cpu_total = cpu.total;
}

int LevelFollower::after_batch(std::size_t raw, double compress_s, double busy_s, double wire,
                               std::size_t judged_from) {
  using namespace std::chrono;
  int level = m_levels.level();
  m_compress_s += compress_s;
  if (raw >= judged_from) {
    level = m_levels.on_batch(busy_s, wire);
  }
  double wall = duration<double>(steady_clock::now() - m_start).count();
  if (wall < k_window) {
    return level;
  }
  std::uint64_t ship_ns = m_shipper.ship_ns();
  std::uint64_t shipped = m_shipper.shipped_bytes();
  CpuTicks cpu = read_cpu_ticks();
  // The idle share of CPU time in the window; -1 when unknown.
  double idle = cpu.total > m_cpu_total && cpu.idle >= m_cpu_idle
                    ? static_cast<double>(cpu.idle - m_cpu_idle) / static_cast<double>(cpu.total - m_cpu_total)
                    : -1;
  LevelWindow w{wall, m_compress_s, static_cast<double>(ship_ns - m_ship_ns) * 1e-9,
                static_cast<double>(shipped - m_shipped), idle};
  level = m_levels.update(w);
  m_start = steady_clock::now();
  m_cpu_idle = cpu.idle;
  m_cpu_total = cpu.total;
  m_compress_s = 0;
  m_ship_ns = ship_ns;
  m_shipped = shipped;
  return level;
}

}  // namespace utsushi::livemig
