#include "utsushi/common/link/server.h"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "utsushi/common/cancel.h"
#include "utsushi/common/log.h"

namespace utsushi::link {

using namespace std::chrono;

namespace {

constexpr int k_backlog = 128;
constexpr milliseconds k_accept_slice{100};

// The state shared between the accept loop and its connection threads.
class Book {
 public:
  explicit Book(const ServerOptions& o) : m_o(o) {}

  // A new connection in its handshake; cuts the oldest beyond max_handshakes.
  void enter(const std::shared_ptr<Link>& link) {
    std::lock_guard lock(m_mutex);
    while (m_handshaking.size() >= std::max(1u, m_o.max_handshakes)) {
      m_handshaking.front()->shutdown();
      m_handshaking.pop_front();
      ++m_cut;
    }
    m_handshaking.push_back(link);
  }
  void leave(const std::shared_ptr<Link>& link) {
    std::lock_guard lock(m_mutex);
    m_handshaking.remove(link);
  }
  // After a verified proof: claims a session slot, or says why not.
  Result<void> admit() {
    std::lock_guard lock(m_mutex);
    if (m_stop || (m_o.total_sessions > 0 && m_admitted >= m_o.total_sessions)) {
      return fail(Errc::unavailable, "the server takes no more sessions");
    }
    if (m_running >= std::max(1u, m_o.max_sessions)) {
      return fail(Errc::unavailable, fmt::format("the server is busy ({} sessions running); try again later", m_running));
    }
    ++m_admitted;
    ++m_running;
    return {};
  }
  void session_ended(AfterSession after) {
    std::lock_guard lock(m_mutex);
    --m_running;
    m_stop = m_stop || after == AfterSession::stop;
    m_changed.notify_all();
  }
  // Serving is over (before the final joins): no new sessions.
  bool finished() {
    std::lock_guard lock(m_mutex);
    return m_stop || (m_o.total_sessions > 0 && m_admitted >= m_o.total_sessions && m_running == 0);
  }
  bool all_admitted() {
    std::lock_guard lock(m_mutex);
    return m_o.total_sessions > 0 && m_admitted >= m_o.total_sessions;
  }
  unsigned admitted() {
    std::lock_guard lock(m_mutex);
    return m_admitted;
  }
  void cut_all() {
    std::lock_guard lock(m_mutex);
    m_stop = true;
    for (auto& l : m_handshaking) {
      l->shutdown();
    }
    m_handshaking.clear();
  }
  // Waits (at most `d`) for a session to end.
  void wait_change(milliseconds d) {
    std::unique_lock lock(m_mutex);
    m_changed.wait_for(lock, d);
  }

 private:
  const ServerOptions& m_o;
  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::list<std::shared_ptr<Link>> m_handshaking;  // oldest first
  unsigned m_admitted = 0, m_running = 0;
  std::uint64_t m_cut = 0;
  bool m_stop = false;
};

// Threads of connections, joined as soon as they end.
class Workers {
 public:
  ~Workers() { join_all(); }
  template <class F>
  void start(F&& f) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    m_threads.push_back({std::thread([f = std::forward<F>(f), done]() mutable {
                           f();
                           done->store(true);
                         }),
                         done});
  }
  void reap() {
    std::erase_if(m_threads, [](Worker& w) {
      if (!w.done->load()) {
        return false;
      }
      w.thread.join();
      return true;
    });
  }
  std::size_t size() const noexcept { return m_threads.size(); }
  void join_all() {
    for (auto& w : m_threads) {
      w.thread.join();
    }
    m_threads.clear();
  }

 private:
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> m_threads;
};

void serve_connection(const ServerOptions& o, Book& book, const std::shared_ptr<Link>& link,
                      const std::function<AfterSession(Link&)>& session) {
  auto h = handshake_server(*link, o.protocol, o.token, o.handshake_timeout, o.greeting, [&] { return book.admit(); });
  book.leave(link);
  if (!h) {
    // Port scans, idle or wrong peers: worth a line at info level, not a warning each.
    UTSUSHI_LOG_INFO("refused a connection: {}", h.error().message());
    return;
  }
  AfterSession after = AfterSession::serve_on;
  try {
    after = session(*link);
  } catch (const std::exception& e) {
    UTSUSHI_LOG_ERROR("a session failed: {}", e.what());
  } catch (...) {
    UTSUSHI_LOG_ERROR("a session failed");
  }
  link->shutdown();
  book.session_ended(after);
}

}  // namespace

Result<Server> Server::listen(const net::HostPort& at, ServerOptions options) {
  auto listener = UTSUSHI_TRY(net::Listener::listen(at, k_backlog));
  return Server(std::move(listener), std::move(options));
}

Result<void> Server::run(const std::function<AfterSession(Link&)>& session) {
  const ServerOptions& o = m_options;
  Book book(o);
  Workers workers;
  // Connections cut for newer ones end within a poll slice; this bounds the
  // threads even while a flood of connections outpaces them.
  const std::size_t max_threads = 2 * std::size_t{std::max(1u, o.max_handshakes)} + std::max(1u, o.max_sessions);
  auto deadline = o.accept_timeout.count() > 0 ? steady_clock::now() + o.accept_timeout : steady_clock::time_point::max();
  Result<void> outcome;
  for (;;) {
    workers.reap();
    if (book.finished()) {
      break;
    }
    if (!book.all_admitted() && steady_clock::now() >= deadline) {
      outcome = fail(Errc::unavailable, fmt::format("only {} of {} clients authenticated in time", book.admitted(),
                                                    o.total_sessions));
      break;
    }
    if (auto c = check_cancelled(); !c) {
      outcome = std::move(c);
      break;
    }
    if (book.all_admitted() || workers.size() >= max_threads) {
      book.wait_change(k_accept_slice);
      continue;
    }
    auto fd = m_listener.accept(k_accept_slice);
    if (!fd) {
      int e = fd.error().sys_errno();
      if (fd.error().code() == Errc::unavailable && e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
        continue;  // nobody yet, or the peer left before accept
      }
      if (fd.error().code() == Errc::cancelled) {
        outcome = std::unexpected(std::move(fd).error());
        break;
      }
      // Out of descriptors or memory under a flood: give connections time to end.
      UTSUSHI_LOG_WARN("accept: {}", fd.error().message());
      book.wait_change(k_accept_slice);
      continue;
    }
    auto link = std::make_shared<Link>(std::move(*fd), o.link);
    book.enter(link);
    workers.start([&o, &book, link, &session] { serve_connection(o, book, link, session); });
  }
  book.cut_all();
  workers.join_all();
  return outcome;
}

}  // namespace utsushi::link
