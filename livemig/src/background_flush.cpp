#include "utsushi/livemig/background_flush.h"

namespace utsushi::livemig {

Result<std::unique_ptr<BackgroundFlusher>> BackgroundFlusher::connect(const std::string& socket,
                                                                      const std::vector<std::string>& exports) {
  std::vector<NbdClient> clients;
  for (const auto& name : exports) {
    clients.push_back(UTSUSHI_TRY_CTX(NbdClient::connect(socket, name), "the receiver's flushing connection"));
  }
  return std::unique_ptr<BackgroundFlusher>(new BackgroundFlusher(std::move(clients)));
}

BackgroundFlusher::BackgroundFlusher(std::vector<NbdClient> clients)
    : m_clients(std::move(clients)), m_thread([this] { run(); }) {}

BackgroundFlusher::~BackgroundFlusher() { (void)stop(); }

void BackgroundFlusher::request() {
  {
    std::lock_guard lock(m_mutex);
    m_requested = true;
  }
  m_wake.notify_one();
}

std::uint64_t BackgroundFlusher::flushes() const {
  std::lock_guard lock(m_mutex);
  return m_flushes;
}

void BackgroundFlusher::run() {
  std::unique_lock lock(m_mutex);
  for (;;) {
    m_wake.wait(lock, [this] { return m_requested || m_stopping; });
    if (m_stopping) {
      return;
    }
    m_requested = false;
    lock.unlock();
    std::optional<Error> failed;
    for (auto& c : m_clients) {
      if (auto r = c.flush(); !r) {
        failed = r.error();
        break;
      }
    }
    lock.lock();
    ++m_flushes;
    if (failed && !m_error) {
      m_error = std::move(failed);
    }
  }
}

Result<void> BackgroundFlusher::stop() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_wake.notify_one();
  if (m_thread.joinable()) {
    m_thread.join();
  }
  for (auto& c : m_clients) {
    (void)c.shutdown();
  }
  m_clients.clear();
  if (m_error) {
    return std::unexpected(*m_error);
  }
  return {};
}

}  // namespace utsushi::livemig
