#include "utsushi/common/log.h"

#include <atomic>
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

}  // namespace

void set_level(Level l) noexcept { g_level.store(static_cast<int>(l)); }
Level level() noexcept { return static_cast<Level>(g_level.load()); }
void set_program(std::string_view name) { g_program = std::string(name); }
std::string_view program() noexcept { return g_program; }

void write(Level l, std::string_view message) {
  std::string line = g_program;
  line += ": ";
  line += level_prefix(l);
  line += message;
  line += '\n';
  std::lock_guard lock(g_write_mutex);
  clear_progress_line();
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace utsushi::log
