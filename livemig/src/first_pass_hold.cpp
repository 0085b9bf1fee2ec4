// The first-pass hold (first_pass_hold.h).
#include "utsushi/livemig/first_pass_hold.h"

#include <utility>

#include "utsushi/common/log.h"
#include "utsushi/livemig/qemu_control.h"

namespace utsushi::livemig {

using namespace std::chrono;

Result<void> FirstPassWatch::on_blocks(const std::vector<RamBlock>& blocks) {
  for (const RamBlock& b : blocks) {
    m_first_pass_pages += b.pages();
  }
  return m_inner.on_blocks(blocks);
}

Result<void> FirstPassWatch::on_page(const PageRecord& record) {
  if (m_near_end) {
    ++m_pages;
    if (m_pages + m_margin >= m_first_pass_pages) {
      auto near_end = std::exchange(m_near_end, nullptr);
      near_end();
    }
  }
  return m_inner.on_page(record);
}

void FirstPassHold::near_end() {
  std::lock_guard lock(m_mutex);
  if (m_released || m_since) {
    return;
  }
  if (auto r = set_max_bandwidth(m_qmp, k_hold_bandwidth); !r) {
    UTSUSHI_LOG_WARN("QEMU's first memory pass is not held until the disks' pre-copy ends: {}", r.error().message());
    return;
  }
  m_since = steady_clock::now();
  UTSUSHI_LOG_DEBUG("QEMU's first memory pass held until the disks' pre-copy ends");
}

Result<void> FirstPassHold::release() {
  std::lock_guard lock(m_mutex);
  m_released = true;
  if (!m_since || m_until) {
    return {};
  }
  UTSUSHI_TRY(set_max_bandwidth(m_qmp, k_open_bandwidth));
  m_until = steady_clock::now();
  UTSUSHI_LOG_DEBUG("QEMU's first memory pass released after {} ms",
                    duration_cast<milliseconds>(*m_until - *m_since).count());
  return {};
}

bool FirstPassHold::held() const {
  std::lock_guard lock(m_mutex);
  return m_since && !m_until;
}

milliseconds FirstPassHold::held_for() const {
  std::lock_guard lock(m_mutex);
  if (!m_since) {
    return milliseconds(0);
  }
  return duration_cast<milliseconds>(m_until.value_or(steady_clock::now()) - *m_since);
}

}  // namespace utsushi::livemig
