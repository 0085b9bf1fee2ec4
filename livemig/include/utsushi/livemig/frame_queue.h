#pragma once
// FrameQueue: a bounded single-producer, single-consumer hand-off of byte
// buffers between two pipeline stages (encode -> link, link -> QEMU), so the
// stages overlap while memory stays bounded: push() blocks while the queue
// holds `capacity` items. close() ends the stream; fail() stops both sides.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "utsushi/common/error.h"
#include "utsushi/common/endian.h"

namespace utsushi::livemig {

template <class Item>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : m_capacity(capacity) {}

  // Blocks while full. Fails with the consumer's error once it failed.
  [[nodiscard]] Result<void> push(Item item) {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_items.size() < m_capacity || m_error; });
    if (m_error) {
      return std::unexpected(*m_error);
    }
    m_items.push_back(std::move(item));
    m_cv.notify_all();
    return {};
  }
  // Blocks while empty; nullopt after close() (all items taken) or fail().
  std::optional<Item> pop() {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return !m_items.empty() || m_closed || m_error; });
    if (m_error || m_items.empty()) {
      return std::nullopt;
    }
    Item item = std::move(m_items.front());
    m_items.pop_front();
    m_cv.notify_all();
    return item;
  }
  void close() {
    std::lock_guard lock(m_mutex);
    m_closed = true;
    m_cv.notify_all();
  }
  void fail(Error e) {
    std::lock_guard lock(m_mutex);
    if (!m_error) {
      m_error = std::move(e);
    }
    m_cv.notify_all();
  }
  std::optional<Error> error() const {
    std::lock_guard lock(m_mutex);
    return m_error;
  }

 private:
  std::size_t m_capacity;
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Item> m_items;
  bool m_closed = false;
  std::optional<Error> m_error;
};

}  // namespace utsushi::livemig
