// The receiver's frames as the sender reads them (peer_inbox.h).
#include "utsushi/livemig/peer_inbox.h"

#include <poll.h>

#include <fmt/core.h>

#include <algorithm>

#include "utsushi/livemig/frame.h"

namespace utsushi::livemig {

using namespace std::chrono;

Result<std::optional<Frame>> PeerInbox::read_one(milliseconds wait) {
  pollfd p{m_link.fd(), POLLIN, 0};
  int ready = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(wait.count(), 0)));
  if (ready <= 0) {
    return std::optional<Frame>();
  }
  // A frame has begun: its rest follows at link speed.
  auto f = UTSUSHI_TRY(m_link.recv(std::max(wait, milliseconds(5000))));
  if (f.header.type == FrameType::progress) {
    const std::uint64_t taken = UTSUSHI_TRY(parse_progress(f.payload));
    std::uint64_t was = m_taken.load();
    while (taken > was && !m_taken.compare_exchange_weak(was, taken)) {
    }
    return std::optional<Frame>();
  }
  return std::optional<Frame>(std::move(f));
}

Result<void> PeerInbox::poll(milliseconds wait) {
  std::unique_lock reading(m_reading, std::defer_lock);
  if (wait.count() <= 0) {
    if (!reading.try_lock()) {
      return {};  // another thread reads now: it keeps what comes
    }
  } else {
    reading.lock();
  }
  auto f = UTSUSHI_TRY(read_one(wait));
  return f ? keep(std::move(*f)) : Result<void>{};
}

Result<void> PeerInbox::drain() {
  std::unique_lock reading(m_reading, std::try_to_lock);
  if (!reading.owns_lock()) {
    return {};  // another thread reads now
  }
  for (;;) {
    pollfd p{m_link.fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) {
      return {};
    }
    if (auto f = UTSUSHI_TRY(read_one(milliseconds(0)))) {
      UTSUSHI_TRY(keep(std::move(*f)));
    }
  }
}

Result<void> PeerInbox::keep(Frame f) {
  std::lock_guard lock(m_state);
  if (m_kept.size() >= k_max_kept) {
    return fail(Errc::corruption,
                fmt::format("livemig: the receiver sent more than {} frames nobody asked for", k_max_kept));
  }
  m_kept.push_back(std::move(f));
  return {};
}

std::optional<std::string> PeerInbox::abort_reason() const {
  std::lock_guard lock(m_state);
  for (const auto& f : m_kept) {
    if (f.header.type == FrameType::abort) {
      return f.text();
    }
  }
  return std::nullopt;
}

Result<Frame> PeerInbox::next(milliseconds timeout) {
  std::lock_guard reading(m_reading);
  {
    std::lock_guard lock(m_state);
    if (!m_kept.empty()) {
      Frame f = std::move(m_kept.front());
      m_kept.pop_front();
      return f;
    }
  }
  const auto deadline = steady_clock::now() + timeout;
  for (;;) {
    const auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) {
      return fail(Errc::unavailable, "livemig: no frame from the receiver in time");
    }
    if (auto f = UTSUSHI_TRY(read_one(left))) {
      return std::move(*f);
    }
  }
}

}  // namespace utsushi::livemig
