#pragma once
// The first-pass hold (livemig's sender, --copy-storage): while the disks'
// pre-copy runs, QEMU's first memory pass must not end.
//
// Why: once its first pass has ended, QEMU compares what remains with its
// downtime-limit at every dirty sync, and a guest that dirtied little since
// meets any limit (nothing remaining meets even 0 ms): QEMU stops the guest,
// and the disks' pre-copy ends in the downtime (278 and 818 ms in two storage
// benchmark rows). Only QEMU's own rate limit holds it: pages it may not send
// stay pending (qemu_control.h, k_hold_bandwidth).
//
// The pump calls near_end() on its thread when FirstPassWatch says so.
// While the disks are pending (release() not called yet) it sets QEMU's
// max-bandwidth to k_hold_bandwidth. release(), when the disks' pre-copy
// ended and on every way out of the sender, ends the hold for good and
// restores k_open_bandwidth if it was held. A hold that could not be set is
// logged and costs nothing else: QEMU's pre-switchover, where the sender
// finishes the pre-copy, remains the fallback. Thread-safe; `qmp` must be
// too (SerialMonitor). near_end() never talks to QEMU after release(): the
// sender releases before `migrate-continue`, after which QEMU writes its
// last pages with its global lock held and answers no monitor command until
// the pump has read them.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/livemig/monitor.h"
#include "utsushi/livemig/stream_parser.h"

namespace utsushi::livemig {

// The trigger. QEMU's first pass sends one record for every page of every
// RAM block, and the stream lists the blocks before any page. FirstPassWatch
// forwards a parse's events to `inner` and calls `near_end` once, just before
// it forwards the page record that brings the count within `margin` pages of
// that total (at the first record when the RAM is smaller than `margin`).
// The pump reads nothing from QEMU while near_end runs, so QEMU gets at most
// its socket's buffer further (hand_socket_to_qemu): about 290 KB of stream,
// 70 pages of data or up to 32k zero pages. A margin that the buffer overruns
// lets the first pass end; then the guest's writes since (pages pending in
// QEMU's next pass) still hold it, a guest that wrote nothing does not.
inline constexpr std::uint64_t k_first_pass_margin = 8192;  // 32 MiB of RAM

class FirstPassWatch final : public StreamSink {
 public:
  FirstPassWatch(StreamSink& inner, std::uint64_t margin, std::function<void()> near_end)
      : m_inner(inner), m_margin(margin), m_near_end(std::move(near_end)) {}
  [[nodiscard]] Result<void> on_raw(std::span<const std::uint8_t> bytes) override { return m_inner.on_raw(bytes); }
  [[nodiscard]] Result<void> on_blocks(const std::vector<RamBlock>& blocks) override;
  [[nodiscard]] Result<void> on_page(const PageRecord& record) override;
  [[nodiscard]] Result<void> on_section_end(bool last) override { return m_inner.on_section_end(last); }

 private:
  StreamSink& m_inner;
  std::uint64_t m_margin;
  std::function<void()> m_near_end;
  std::uint64_t m_first_pass_pages = 0;
  std::uint64_t m_pages = 0;
};

class FirstPassHold {
 public:
  explicit FirstPassHold(Monitor& qmp) noexcept : m_qmp(qmp) {}
  FirstPassHold(const FirstPassHold&) = delete;
  FirstPassHold& operator=(const FirstPassHold&) = delete;

  void near_end();
  [[nodiscard]] Result<void> release();
  // QEMU is held now.
  [[nodiscard]] bool held() const;
  // How long QEMU was held, the current hold included.
  [[nodiscard]] std::chrono::milliseconds held_for() const;

 private:
  Monitor& m_qmp;
  mutable std::mutex m_mutex;  // held across the monitor commands: near_end() and release() never cross
  bool m_released = false;
  // The one hold there can be: set when QEMU was held, `m_until` once released.
  std::optional<std::chrono::steady_clock::time_point> m_since;
  std::optional<std::chrono::steady_clock::time_point> m_until;
};

}  // namespace utsushi::livemig
