// The link stage of a sending pipeline (see shipper.h).
#include "utsushi/livemig/shipper.h"

#include <chrono>

namespace utsushi::livemig {

Shipper::Shipper(std::size_t capacity, Send send)
    : m_queue(capacity), m_send(std::move(send)), m_thread([this] { run(); }) {}

Shipper::~Shipper() {
  if (m_thread.joinable()) {
    abandon(Error(Errc::aborted, "livemig: shipper abandoned"));
  }
}

void Shipper::run() {
  using namespace std::chrono;
  while (auto f = m_queue.pop()) {
    auto t0 = steady_clock::now();
    auto r = m_send(*f);
    m_ship_ns += static_cast<std::uint64_t>(duration_cast<nanoseconds>(steady_clock::now() - t0).count());
    m_shipped += f->payload.size() + k_frame_header;
    if (!r) {
      m_queue.fail(r.error());
      return;
    }
  }
}

Result<void> Shipper::push(OutFrame frame) { return m_queue.push(std::move(frame)); }

Result<void> Shipper::finish() {
  m_queue.close();
  if (m_thread.joinable()) {
    m_thread.join();
  }
  if (auto e = m_queue.error()) {
    return std::unexpected(std::move(*e));
  }
  return {};
}

void Shipper::abandon(Error why) {
  m_queue.fail(std::move(why));
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

}  // namespace utsushi::livemig
