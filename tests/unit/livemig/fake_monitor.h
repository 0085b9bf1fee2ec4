#pragma once
// FakeMonitor: a scripted Monitor (monitor.h) for unit tests of the sender's
// and the receiver's failure paths, where a real QEMU cannot be made to
// misbehave on demand: a QMP error from `quit`, a monitor that is gone in the
// middle of a call, a reply that comes too late, an event that arrives after
// the fact. The e2e tests keep driving real QEMU; this double answers only
// what a test scripted, and says so when it was asked anything else.
//
// Script. on(command, reply) answers every call of `command`; once(command,
// reply) answers only the next one, ahead of on()'s answer (several once()
// replies are used in order). A reply is
//   Reply::ok(value)          QEMU's "return" value
//   Reply::qmp_error(desc)    a QMP error reply: Errc::failed_precondition
//   Reply::gone()             the monitor is gone (QEMU exited): Errc::unavailable
//                             with errno ECONNRESET, and from then on every call
//                             fails that way, as on a closed QMP socket
//   Reply::late()             no reply in time: Errc::unavailable, errno 0
//   Reply::from(handler)      whatever handler(arguments, pass_fd) returns (an
//                             error that is monitor_gone() makes the monitor gone)
// and may carry events that arrive with it (.with_event(), QEMU sent them
// while the command waited). A command nobody scripted fails with
// Errc::internal and is listed by unscripted().
//
// File descriptors: a command that passes one (getfd) and succeeds leaves a
// duplicate with the fake, as QEMU keeps the descriptor it got; a test takes
// it with wait_passed_fd() to write or read QEMU's side of a stream.
//
// Events carry the timestamps the test gives them (QEMU's wall clock, in
// microseconds). emit() makes an event arrive now; emit_late(..., polls)
// makes it arrive only after `polls` more polls: one per poll_events() call,
// and one per 5 ms that wait_event() waits (as libvirt delivers events on its
// own thread, after the command that caused them answered).
//
// Thread-safety: the code under test uses the monitor from one thread (the
// Monitor contract); tests may script, emit, vanish() and read the log from
// other threads at any time. Handlers run without the lock held, so they
// may call emit() or any other method of this monitor.
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/common/fd.h"
#include "utsushi/livemig/monitor.h"

namespace utsushi::livemig::test {

class FakeMonitor;

class Reply {
 public:
  using Handler = std::function<Result<nlohmann::json>(const nlohmann::json& arguments, int pass_fd)>;

  static Reply ok(nlohmann::json value = nlohmann::json::object()) {
    return Reply([value](const nlohmann::json&, int) -> Result<nlohmann::json> { return value; });
  }
  static Reply qmp_error(std::string desc) {
    return Reply([desc](const nlohmann::json&, int) -> Result<nlohmann::json> {
      return fail(Errc::failed_precondition, "QMP (fake) failed: " + desc);
    });
  }
  static Reply gone() {
    return Reply([](const nlohmann::json&, int) -> Result<nlohmann::json> {
      return fail(Errc::unavailable, "QMP (fake): connection closed (QEMU exited?)", ECONNRESET);
    });
  }
  static Reply late() {
    return Reply([](const nlohmann::json&, int) -> Result<nlohmann::json> {
      return fail(Errc::unavailable, "QMP (fake): no answer in time");
    });
  }
  static Reply from(Handler handler) { return Reply(std::move(handler)); }

  // An event that arrives together with this reply.
  Reply with_event(std::string name, std::int64_t timestamp_us, nlohmann::json data = nlohmann::json::object()) && {
    m_events.push_back({std::move(name), std::move(data), timestamp_us});
    return std::move(*this);
  }

 private:
  friend class FakeMonitor;
  explicit Reply(Handler handler) : m_handler(std::move(handler)) {}
  Handler m_handler;
  std::vector<QmpEvent> m_events;
};

struct MonitorCall {
  std::string command;
  nlohmann::json arguments;
  bool passed_fd = false;
};

class FakeMonitor final : public Monitor {
 public:
  explicit FakeMonitor(std::string path = "fake-qmp") : m_path(std::move(path)) {}

  FakeMonitor& on(const std::string& command, Reply reply) {
    std::lock_guard lock(m_mutex);
    m_always.insert_or_assign(command, std::move(reply));
    return *this;
  }
  FakeMonitor& once(const std::string& command, Reply reply) {
    std::lock_guard lock(m_mutex);
    m_once[command].push_back(std::move(reply));
    return *this;
  }

  void emit(std::string name, std::int64_t timestamp_us, nlohmann::json data = nlohmann::json::object()) {
    emit_late(std::move(name), timestamp_us, 0, std::move(data));
  }
  void emit_late(std::string name, std::int64_t timestamp_us, int polls,
                 nlohmann::json data = nlohmann::json::object()) {
    std::lock_guard lock(m_mutex);
    QmpEvent e{std::move(name), std::move(data), timestamp_us};
    if (polls <= 0) {
      m_events.push_back(std::move(e));
    } else {
      m_late.push_back({std::move(e), polls});
    }
    m_changed.notify_all();
  }
  // QEMU exits: every call from now on finds the monitor gone.
  void vanish() {
    std::lock_guard lock(m_mutex);
    m_gone = true;
    m_changed.notify_all();
  }

  // Waits up to `timeout` for the oldest descriptor passed with a successful
  // command that nobody took yet.
  std::optional<Fd> wait_passed_fd(std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_mutex);
    if (!m_changed.wait_for(lock, timeout, [&] { return !m_fds.empty(); })) {
      return std::nullopt;
    }
    Fd fd = std::move(m_fds.front());
    m_fds.pop_front();
    return fd;
  }

  // Waits up to `timeout` until `command` has been answered at least once.
  bool wait_answered(const std::string& command, std::chrono::milliseconds timeout) {
    std::unique_lock lock(m_mutex);
    return m_changed.wait_for(lock, timeout,
                              [&] { return std::count(m_answered.begin(), m_answered.end(), command) > 0; });
  }

  std::vector<MonitorCall> calls() const {
    std::lock_guard lock(m_mutex);
    return m_calls;
  }
  std::vector<std::string> commands() const {
    std::lock_guard lock(m_mutex);
    std::vector<std::string> names;
    for (const auto& c : m_calls) {
      names.push_back(c.command);
    }
    return names;
  }
  int count(const std::string& command) const {
    std::lock_guard lock(m_mutex);
    return static_cast<int>(
        std::count_if(m_calls.begin(), m_calls.end(), [&](const MonitorCall& c) { return c.command == command; }));
  }
  std::vector<std::string> unscripted() const {
    std::lock_guard lock(m_mutex);
    return m_unscripted;
  }

  // --- Monitor ---
  Result<nlohmann::json> execute(const std::string& command, const nlohmann::json& arguments = nlohmann::json::object(),
                                 int pass_fd = -1) override {
    Reply::Handler handler;
    std::vector<QmpEvent> events;
    {
      std::lock_guard lock(m_mutex);
      m_calls.push_back({command, arguments, pass_fd >= 0});
      if (m_gone) {
        return gone_error();
      }
      if (auto q = m_once.find(command); q != m_once.end() && !q->second.empty()) {
        handler = std::move(q->second.front().m_handler);
        events = std::move(q->second.front().m_events);
        q->second.pop_front();
      } else if (auto a = m_always.find(command); a != m_always.end()) {
        handler = a->second.m_handler;
        events = a->second.m_events;
      } else {
        m_unscripted.push_back(command);
        return fail(Errc::internal, "fake monitor " + m_path + ": no script for " + command);
      }
    }
    auto r = handler(arguments, pass_fd);
    std::lock_guard lock(m_mutex);
    for (auto& e : events) {
      m_events.push_back(std::move(e));
    }
    if (!r && monitor_gone(r.error())) {
      m_gone = true;
    }
    m_answered.push_back(command);
    if (r && pass_fd >= 0) {
      Fd kept(::fcntl(pass_fd, F_DUPFD_CLOEXEC, 0));
      if (!kept) {
        r = fail_errno(errno, "fake monitor: keeping the descriptor passed with " + command);
      } else {
        m_fds.push_back(std::move(kept));
      }
    }
    m_changed.notify_all();
    return r;
  }

  Result<QmpEvent> wait_event(const std::string& name, std::chrono::milliseconds timeout) override {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(m_mutex);
    for (;;) {
      tick_locked();
      for (const auto& e : m_events) {
        if (e.name == name) {
          return e;
        }
      }
      if (m_gone) {
        return gone_error();
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return fail(Errc::unavailable, "fake monitor " + m_path + ": no " + name + " event in time");
      }
      m_changed.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(5)));
    }
  }

  std::optional<QmpEvent> last_event(const std::string& name) const override {
    std::lock_guard lock(m_mutex);
    for (auto it = m_events.rbegin(); it != m_events.rend(); ++it) {
      if (it->name == name) {
        return *it;
      }
    }
    return std::nullopt;
  }

  Result<void> poll_events() override {
    std::lock_guard lock(m_mutex);
    tick_locked();
    if (m_gone) {
      return gone_error();
    }
    return {};
  }

  const std::string& path() const noexcept override { return m_path; }

 private:
  struct Late {
    QmpEvent event;
    int polls;
  };

  std::unexpected<Error> gone_error() const {
    return fail(Errc::unavailable, "QMP " + m_path + " (fake): connection closed (QEMU exited?)", ECONNRESET);
  }
  // One poll: late events come one step closer, and arrive when due.
  void tick_locked() {
    for (auto it = m_late.begin(); it != m_late.end();) {
      if (--it->polls <= 0) {
        m_events.push_back(std::move(it->event));
        it = m_late.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::string m_path;
  mutable std::mutex m_mutex;
  std::condition_variable m_changed;
  std::map<std::string, Reply> m_always;
  std::map<std::string, std::deque<Reply>> m_once;
  std::vector<MonitorCall> m_calls;
  std::vector<std::string> m_unscripted;
  std::vector<std::string> m_answered;  // commands whose handler has run
  std::deque<QmpEvent> m_events;
  std::vector<Late> m_late;
  std::deque<Fd> m_fds;
  bool m_gone = false;
};

}  // namespace utsushi::livemig::test
