// Batch compression and the adaptive level (see batch_compressor.h).
#include "utsushi/livemig/batch_compressor.h"

#include <zstd.h>

#include <fmt/core.h>

#include <algorithm>

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

}  // namespace utsushi::livemig
