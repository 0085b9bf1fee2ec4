// The disks' pre-copy thread (disk_precopy.h).
#include "utsushi/livemig/disk_precopy.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "utsushi/common/cancel.h"

namespace utsushi::livemig {

using namespace std::chrono;

milliseconds memory_lead(std::uint64_t memory_bytes) noexcept {
  return milliseconds(static_cast<std::int64_t>(static_cast<double>(memory_bytes) / k_first_pass_bytes_per_s * 1000));
}

std::optional<milliseconds> bulk_time_left(std::uint64_t left_bytes, std::uint64_t recent_bytes,
                                           steady_clock::duration recent) {
  if (left_bytes == 0) {
    return milliseconds(0);
  }
  if (recent < k_min_measure || recent_bytes == 0) {
    return std::nullopt;
  }
  const double rate = static_cast<double>(recent_bytes) / duration<double>(recent).count();
  const double left_s = static_cast<double>(left_bytes) / rate;
  return milliseconds(static_cast<std::int64_t>(std::min(left_s, 1e9) * 1000));
}

DiskPrecopy::DiskPrecopy(DiskSource& disks, FrameSend send, const SendOptions& options)
    : m_disks(disks), m_send(std::move(send)), m_options(options), m_thread([this] {
        m_result = run();
        m_done = true;
      }) {}

DiskPrecopy::~DiskPrecopy() {
  stop();
  (void)join();
}

Result<void> DiskPrecopy::join() {
  if (m_thread.joinable()) {
    m_thread.join();
  }
  return m_result;
}

std::optional<milliseconds> DiskPrecopy::bulk_time_left() {
  if (m_bulk_done.load()) {
    return milliseconds(0);
  }
  const DiskSource::PassProgress& p = m_disks.progress();
  if (!p.listed.load()) {
    return std::nullopt;
  }
  const auto now = steady_clock::now();
  const std::uint64_t data = p.data_bytes.load();
  const std::uint64_t sent = p.sent_bytes.load();
  m_sent_samples.emplace_back(now, sent);
  // The samples inside the window, and the newest one older than it.
  while (m_sent_samples.size() > 2 && now - m_sent_samples[1].first >= k_rate_window) {
    m_sent_samples.pop_front();
  }
  const auto& [since, sent_then] = m_sent_samples.front();
  return livemig::bulk_time_left(data > sent ? data - sent : 0, sent - sent_then, now - since);
}

Result<void> DiskPrecopy::run() {
  FrameSend send = [this](FrameType type, std::span<const std::uint8_t> payload) -> Result<void> {
    if (m_stop.load()) {
      return fail(Errc::cancelled, "the disks' pre-copy was stopped");
    }
    return m_send(type, payload);
  };
  UTSUSHI_TRY(m_disks.send_pass(send, "bulk"));
  m_bulk_done = true;
  for (unsigned n = 1; n <= m_options.max_disk_passes; ++n) {
    if (m_stop.load() || cancel_requested()) {
      return fail(Errc::cancelled, "the disks' pre-copy was stopped");
    }
    UTSUSHI_TRY(m_disks.next_pass());
    if (UTSUSHI_TRY(m_disks.send_pass(send, fmt::format("dirty-{}", n))) <= m_options.disk_pass_bytes) {
      break;
    }
  }
  return {};
}

}  // namespace utsushi::livemig
