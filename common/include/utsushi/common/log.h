#pragma once
// Logging to stderr, prefixed with the program name. The CLI sets the level
// from -v/-q; libraries log through the macros below, which format nothing
// when the level is disabled.
//   UTSUSHI_LOG_ERROR / _WARN / _INFO / _DEBUG(fmt-format-string, args...)
// Debug and trace lines carry the time of day (HH:MM:SS.mmm), so that the
// lines of two processes line up.

#include <fmt/core.h>

#include <string_view>

namespace utsushi::log {

enum class Level { quiet = 0, error = 1, warn = 2, info = 3, debug = 4, trace = 5 };

void set_level(Level level) noexcept;
Level level() noexcept;
inline bool enabled(Level l) noexcept { return static_cast<int>(l) <= static_cast<int>(level()); }

// The program name printed before every line ("p2v: warning: ...").
void set_program(std::string_view name);
std::string_view program() noexcept;

// Writes one line "PROGRAM: [LEVEL: ]MESSAGE" to stderr (thread-safe; clears a
// progress bar first so the two never interleave).
void write(Level level, std::string_view message);

}  // namespace utsushi::log

#define UTSUSHI_LOG_AT(lvl, ...)                                     \
  do {                                                               \
    if (::utsushi::log::enabled(lvl)) {                              \
      ::utsushi::log::write(lvl, ::fmt::format(__VA_ARGS__));        \
    }                                                                \
  } while (0)
#define UTSUSHI_LOG_ERROR(...) UTSUSHI_LOG_AT(::utsushi::log::Level::error, __VA_ARGS__)
#define UTSUSHI_LOG_WARN(...) UTSUSHI_LOG_AT(::utsushi::log::Level::warn, __VA_ARGS__)
#define UTSUSHI_LOG_INFO(...) UTSUSHI_LOG_AT(::utsushi::log::Level::info, __VA_ARGS__)
#define UTSUSHI_LOG_DEBUG(...) UTSUSHI_LOG_AT(::utsushi::log::Level::debug, __VA_ARGS__)
