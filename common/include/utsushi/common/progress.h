#pragma once
// Progress reporting. Library code takes a ProgressFn and calls it with bytes
// done and bytes total (total may change, e.g. when a used-block map is read);
// it never draws anything. The CLI edge creates a ProgressReporter that, per
// its mode, draws a bar on a TTY (stderr: bytes, rate, ETA), prints JSON lines
// on stdout ({"type":"progress",...}), or stays silent.

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace utsushi {

using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

enum class ProgressMode { none, bar, json };

// Chooses the mode a CLI should use: json when --json was given, bar when
// stderr is a terminal and not quiet, none otherwise.
ProgressMode choose_progress_mode(bool json, bool quiet);

// "1.5 GiB", "512 B" (binary units).
std::string format_bytes(std::uint64_t bytes);
// "1:02:03" / "2:03"; "--:--" for unknown.
std::string format_duration(double seconds);

class ProgressReporter {
 public:
  ProgressReporter(ProgressMode mode, std::string label);
  ~ProgressReporter();  // finishes the bar line if one was drawn
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // Thread-safe; rate-limited to about 5 updates a second (the last update,
  // done == total, is always shown).
  void update(std::uint64_t done, std::uint64_t total);
  // A ProgressFn bound to this reporter (it must outlive the function).
  ProgressFn callback();
  // Clears the bar (if any) and ends the line.
  void finish();

 private:
  void draw_bar(std::uint64_t done, std::uint64_t total, double elapsed);
  void emit_json(std::uint64_t done, std::uint64_t total, double elapsed);

  ProgressMode m_mode;
  std::string m_label;
  std::mutex m_mutex;
  std::chrono::steady_clock::time_point m_start;
  std::chrono::steady_clock::time_point m_last;
  bool m_drawn = false;
  bool m_finished = false;
};

// Clears a progress bar line on stderr if one is showing (used by log::write).
void clear_progress_line();

}  // namespace utsushi
