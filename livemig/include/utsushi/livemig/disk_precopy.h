#pragma once
// The disks' pre-copy on a thread of its own (for livemig's sender):
// pass 0 ("bulk": every top image's allocation), then dirty passes until one
// carries at most SendOptions::disk_pass_bytes or after max_disk_passes.
//
// Why a thread: QEMU's memory migration starts before the pre-copy ends
// (sender.cpp's copy_disks), about memory_lead() before the bulk pass's
// end. QEMU's first memory pass is mostly pages that cost the link little
// (zeros, references to disk and backing blocks) and keeps the CPUs busy;
// the bulk pass leaves the link's rate and a core to spare. Overlapped, the
// two share the link instead of following each other. The cost: a page equal to a block the pre-copy has not sent yet
// goes as a page, not as a reference. QEMU's first pass is held near its
// end while the pre-copy runs (first_pass_hold.h), and a pre-switchover
// reached anyway waits for it (docs/ARCHITECTURE.md, "livemig: disks").
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <thread>

#include "utsushi/livemig/disk_session.h"
#include "utsushi/livemig/session.h"

namespace utsushi::livemig {

// The pace of QEMU's first memory pass while it shares the link and the
// CPUs with the bulk pass. The destination's QEMU loads the stream on one
// thread (its main loop), which on the storage benchmark's machine spends most
// of it faulting in the guest's RAM (transparent huge pages, zeroed on first
// touch): it took 40-60 MB of stream per second, so the first pass's load
// lasted about as long as the bulk pass. Starting late costs the whole
// migration the wait for that load; starting early costs the pages QEMU sends
// again and the pages equal to blocks not sent yet (they go as pages, not
// references). Measured on the benchmark (a 512 MiB guest, an 8-9 s bulk
// pass): a lead of 2 s (256 MiB/s) took 12.8-12.9 s, 4 s 12.0-12.5 s, 8 s
// (64 MiB/s) 10.9-12.2 s, a lead longer than the bulk pass (memory from its
// start) 10.1-10.8 s for 5-30 MB more on the link. Not before k_min_measure
// in any case: QEMU's migration setup stalls its main loop, and with it the
// NBD reads of the bulk pass, for 250-340 ms; half a second in, the disks'
// queued batches carry the link through it (docs/ARCHITECTURE.md).
inline constexpr double k_first_pass_bytes_per_s = 32.0 * 1024 * 1024;
// How long before the bulk pass's end QEMU's migration starts: QEMU's first
// pass over `memory_bytes` of RAM at k_first_pass_bytes_per_s.
[[nodiscard]] std::chrono::milliseconds memory_lead(std::uint64_t memory_bytes) noexcept;

// The bulk pass's time left for `left_bytes` of data at the rate of the
// last `recent` (`recent_bytes` reached the link then): zero when nothing is
// left, nullopt while `recent` is under k_min_measure or carried nothing.
// DiskPrecopy measures over the last k_rate_window, not since the pass
// began: its first seconds, while both ends index the backing file, are
// slow, and a rate since the start put the migration's start 4.5 s into a
// 7.5 s bulk pass whatever the lead.
inline constexpr std::chrono::milliseconds k_min_measure{500};
inline constexpr std::chrono::milliseconds k_rate_window{1000};
[[nodiscard]] std::optional<std::chrono::milliseconds> bulk_time_left(std::uint64_t left_bytes,
                                                                      std::uint64_t recent_bytes,
                                                                      std::chrono::steady_clock::duration recent);

class DiskPrecopy {
 public:
  // Starts the passes on their own thread. `send` is called on the passes'
  // shipper thread; the passes' bitmap swaps go through `disks`' monitor,
  // which must be safe for two threads (SerialMonitor). `disks` and
  // `options` must outlive the object.
  DiskPrecopy(DiskSource& disks, FrameSend send, const SendOptions& options);
  // stop(), then waits for the thread.
  ~DiskPrecopy();
  DiskPrecopy(const DiskPrecopy&) = delete;
  DiskPrecopy& operator=(const DiskPrecopy&) = delete;

  bool done() const noexcept { return m_done.load(); }
  // The bulk pass's time left (bulk_time_left over the last k_rate_window;
  // zero once it ended). For one thread, which calls it regularly: each
  // call adds a sample of the rate.
  [[nodiscard]] std::optional<std::chrono::milliseconds> bulk_time_left();
  // The passes fail (Errc::cancelled) at their next frame or pass.
  void stop() noexcept { m_stop = true; }
  // Waits for the thread and returns the passes' outcome (once).
  [[nodiscard]] Result<void> join();

 private:
  [[nodiscard]] Result<void> run();

  DiskSource& m_disks;
  FrameSend m_send;
  const SendOptions& m_options;
  std::atomic<bool> m_stop{false};
  std::atomic<bool> m_bulk_done{false};
  std::atomic<bool> m_done{false};
  Result<void> m_result;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> m_sent_samples;  // bulk_time_left's
  std::thread m_thread;  // last: starts once the members above exist
};

}  // namespace utsushi::livemig
