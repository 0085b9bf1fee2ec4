#include "utsushi/common/log.h"

#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <mutex>
#include <string>

#include "utsushi/common/progress.h"

namespace utsushi::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::warn)};
std::string g_program = "utsushi";
std::mutex g_write_mutex;

std::string_view level_prefix(Level level) {
  switch (level) {
    case Level::error: return "error: ";
    case Level::warn: return "warning: ";
    case Level::debug: return "debug: ";
    case Level::trace: return "trace: ";
    default: return "";
  }
}

// "HH:MM:SS.mmm " of the wall clock (local time): at debug verbosity every
// line carries it, so that the lines of two processes, such as a migration's
// two ends on one host, line up by it.
std::string clock_stamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d ", tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void set_level(Level l) noexcept { g_level.store(static_cast<int>(l)); }
Level level() noexcept { return static_cast<Level>(g_level.load()); }
void set_program(std::string_view name) { g_program = std::string(name); }
std::string_view program() noexcept { return g_program; }

void write(Level l, std::string_view message) {
  std::string line = g_program;
  line += ": ";
  line += level_prefix(l);
  if (l >= Level::debug || level() >= Level::debug) {
    line += clock_stamp();
  }
  line += message;
  line += '\n';
  std::lock_guard lock(g_write_mutex);
  clear_progress_line();
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace utsushi::log
