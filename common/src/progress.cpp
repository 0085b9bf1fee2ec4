#include "utsushi/common/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <nlohmann/json.hpp>

#include <fmt/core.h>

namespace utsushi {
namespace {

std::atomic<bool> g_bar_showing{false};

}  // namespace

void clear_progress_line() {
  if (g_bar_showing.exchange(false)) {
    std::fputs("\r\033[K", stderr);
  }
}

ProgressMode choose_progress_mode(bool json, bool quiet) {
  if (json) {
    return ProgressMode::json;
  }
  if (!quiet && ::isatty(STDERR_FILENO)) {
    return ProgressMode::bar;
  }
  return ProgressMode::none;
}

std::string format_bytes(std::uint64_t bytes) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) {
    return fmt::format("{} B", bytes);
  }
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024.0 && unit < 6) {
    v /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", v, units[unit]);
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) {
    return "--:--";
  }
  auto s = static_cast<std::uint64_t>(seconds + 0.5);
  if (s >= 3600) {
    return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  }
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

ProgressReporter::ProgressReporter(ProgressMode mode, std::string label)
    : m_mode(mode), m_label(std::move(label)), m_start(std::chrono::steady_clock::now()), m_last{} {}

ProgressReporter::~ProgressReporter() { finish(); }

ProgressFn ProgressReporter::callback() {
  return [this](std::uint64_t done, std::uint64_t total) { update(done, total); };
}

void ProgressReporter::update(std::uint64_t done, std::uint64_t total) {
  if (m_mode == ProgressMode::none) {
    return;
  }
  std::lock_guard lock(m_mutex);
  if (m_finished) {
    return;
  }
  auto now = std::chrono::steady_clock::now();
  bool last = total != 0 && done >= total;
  if (!last && now - m_last < std::chrono::milliseconds(200)) {
    return;
  }
  m_last = now;
  double elapsed = std::chrono::duration<double>(now - m_start).count();
  if (m_mode == ProgressMode::bar) {
    draw_bar(done, total, elapsed);
  } else {
    emit_json(done, total, elapsed);
  }
}

void ProgressReporter::draw_bar(std::uint64_t done, std::uint64_t total, double elapsed) {
  double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  double fraction = total ? static_cast<double>(done) / static_cast<double>(total) : 0;
  if (fraction > 1) {
    fraction = 1;
  }
  constexpr int width = 24;
  int filled = static_cast<int>(fraction * width);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(width, '.');
  double eta = rate > 0 && total >= done ? static_cast<double>(total - done) / rate : -1;
  std::string line = fmt::format("\r\033[K{} [{}] {:5.1f}% {} / {}  {}/s  ETA {}", m_label, bar,
                                 fraction * 100, format_bytes(done), format_bytes(total),
                                 format_bytes(static_cast<std::uint64_t>(rate)), format_duration(eta));
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  m_drawn = true;
  g_bar_showing.store(true);
}

void ProgressReporter::emit_json(std::uint64_t done, std::uint64_t total, double elapsed) {
  double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  nlohmann::json j = {{"type", "progress"},   {"label", m_label},
                      {"done", done},         {"total", total},
                      {"elapsed_s", elapsed}, {"bytes_per_s", static_cast<std::uint64_t>(rate)}};
  if (rate > 0 && total >= done) {
    j["eta_s"] = static_cast<double>(total - done) / rate;
  }
  std::string line = j.dump() + "\n";
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

void ProgressReporter::finish() {
  std::lock_guard lock(m_mutex);
  if (m_finished) {
    return;
  }
  m_finished = true;
  if (m_drawn) {
    std::fputs("\n", stderr);
    g_bar_showing.store(false);
  }
}

}  // namespace utsushi
