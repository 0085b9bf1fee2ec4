#pragma once
// What a test of the sender and receiver (session.h) needs: a linked pair of
// real Links, scripts of healthy QEMU 7.2 monitors on a FakeMonitor
// (fake_monitor.h), a source whose guest runs and a destination started with
// -incoming defer, and migrate(), which runs the real run_sender and
// run_receiver between them. A test builds the QEMUs, overrides the replies
// it wants to fail (FakeMonitor::once/on), and checks both reports. The
// stream goes through the sockets the sender and receiver hand over with
// `getfd`, so the real pump and feeder move real bytes.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "fake_monitor.h"
#include "utsushi/common/net.h"
#include "utsushi/livemig/link.h"
#include "utsushi/livemig/session.h"

namespace utsushi::livemig::test {

inline nlohmann::json qemu_72_version() {
  return {{"qemu", {{"major", 7}, {"minor", 2}, {"micro", 0}}}, {"package", ""}};
}

// Writes all of `bytes` to a stream socket; false when its reader is gone.
inline bool send_all(int fd, std::span<const std::uint8_t> bytes) { return net::send_all(fd, bytes).has_value(); }

// The source: query-status says `runstate`, query-migrate follows the
// migration ("none", then "active" from `migrate` on). The test writes the
// stream into the descriptor passed with getfd (qmp.wait_passed_fd) and calls
// complete() once QEMU would have. migrate_cancel ends an active migration
// ("cancelled"), cont resumes the guest, quit answers and then the monitor
// is gone.
class ScriptedSource {
 public:
  FakeMonitor qmp{"fake-source.qmp"};

  explicit ScriptedSource(std::string runstate = "running") : m_runstate(std::move(runstate)) {
    using nlohmann::json;
    qmp.on("query-version", Reply::ok(qemu_72_version()));
    qmp.on("query-status", Reply::from([this](const json&, int) -> Result<json> {
             std::lock_guard lock(m_mutex);
             return json{{"status", m_runstate}, {"running", m_runstate == "running"}};
           }));
    qmp.on("query-migrate", Reply::from([this](const json&, int) -> Result<json> {
             std::lock_guard lock(m_mutex);
             if (m_migration == "none") {
               return json::object();
             }
             json j = {{"status", m_migration}, {"ram", {{"dirty-sync-count", 2}, {"remaining", 0}}}};
             if (m_migration == "completed") {
               j["downtime"] = 42;
             }
             if (m_migration == "failed") {
               j["error-desc"] = m_error;
             }
             return j;
           }));
    for (const char* c : {"migrate-set-capabilities", "migrate-set-parameters", "getfd", "closefd"}) {
      qmp.on(c, Reply::ok());
    }
    qmp.on("migrate", Reply::from([this](const json&, int) -> Result<json> {
             set_migration("active");
             return json::object();
           }));
    qmp.on("migrate_cancel", Reply::from([this](const json&, int) -> Result<json> {
             std::lock_guard lock(m_mutex);
             if (m_migration == "active") {
               m_migration = "cancelled";
             }
             return json::object();
           }));
    qmp.on("cont", Reply::from([this](const json&, int) -> Result<json> {
             std::lock_guard lock(m_mutex);
             m_runstate = "running";
             return json::object();
           }));
    qmp.on("quit", Reply::from([this](const json&, int) -> Result<json> {
             qmp.vanish();
             return json::object();
           }));
  }

  // QEMU wrote its whole stream: the guest is stopped and the migration
  // "completed". Its STOP event (at `stop_us`; none when empty) arrives
  // after `stop_late_polls` polls of the monitor (FakeMonitor::emit_late).
  void complete(std::optional<std::int64_t> stop_us, int stop_late_polls = 0) {
    {
      std::lock_guard lock(m_mutex);
      m_runstate = "postmigrate";
    }
    if (stop_us) {
      qmp.emit_late("STOP", *stop_us, stop_late_polls);
    }
    set_migration("completed");
  }
  void fail_migration(std::string why) {
    std::lock_guard lock(m_mutex);
    m_migration = "failed";
    m_error = std::move(why);
  }
  void set_migration(std::string status) {
    std::lock_guard lock(m_mutex);
    m_migration = std::move(status);
  }
  std::string runstate() const {
    std::lock_guard lock(m_mutex);
    return m_runstate;
  }

 private:
  mutable std::mutex m_mutex;
  std::string m_runstate;
  std::string m_migration = "none";
  std::string m_error;
};

// The destination: "inmigrate" while it reads the stream from the descriptor
// passed with getfd (to EOF, on its own thread, from migrate-incoming on).
// If what it read is `expected`, it is loaded: "running" with a RESUME event
// at `resume_us`, or "paused" when `stop` was sent first (hold); otherwise it
// stays "inmigrate" (it never loads). cont starts a paused guest (RESUME
// again), quit answers and then the monitor is gone. With StreamEnd::drop the
// destination closes the stream socket at once instead (the receiver's feed
// fails).
enum class StreamEnd { load, drop };

class ScriptedDestination {
 public:
  FakeMonitor qmp{"fake-destination.qmp"};

  ScriptedDestination(std::vector<std::uint8_t> expected, std::int64_t resume_us, StreamEnd end = StreamEnd::load)
      : m_expected(std::move(expected)), m_resume_us(resume_us) {
    using nlohmann::json;
    qmp.on("query-version", Reply::ok(qemu_72_version()));
    qmp.on("query-status", Reply::from([this](const json&, int) -> Result<json> {
             std::lock_guard lock(m_mutex);
             return json{{"status", m_runstate}, {"running", m_runstate == "running"}};
           }));
    qmp.on("migrate-set-capabilities", Reply::ok());
    qmp.on("getfd", Reply::ok());
    qmp.on("stop", Reply::from([this](const json&, int) -> Result<json> {
             std::lock_guard lock(m_mutex);
             m_autostart = false;
             return json::object();
           }));
    qmp.on("migrate-incoming", Reply::from([this, end](const json&, int) -> Result<json> {
             auto fd = qmp.wait_passed_fd(std::chrono::milliseconds(0));
             if (!fd) {
               return fail(Errc::failed_precondition, "QMP (fake) failed: no fd named for migrate-incoming");
             }
             if (end == StreamEnd::load) {
               {
                 std::lock_guard lock(m_mutex);
                 m_watch = Fd(::fcntl(fd->get(), F_DUPFD_CLOEXEC, 0));
               }
               m_loader = std::thread([this, f = std::move(*fd)] { load(f.get()); });
             }
             return json::object();
           }));
    qmp.on("cont", Reply::from([this](const json&, int) -> Result<json> {
             {
               std::lock_guard lock(m_mutex);
               m_runstate = "running";
             }
             qmp.emit("RESUME", m_resume_us);
             return json::object();
           }));
    qmp.on("quit", Reply::from([this](const json&, int) -> Result<json> {
             qmp.vanish();
             return json::object();
           }));
  }
  ~ScriptedDestination() {
    if (m_loader.joinable()) {
      m_loader.join();
    }
  }
  ScriptedDestination(const ScriptedDestination&) = delete;
  ScriptedDestination& operator=(const ScriptedDestination&) = delete;

  // Whether the receiver's end of the stream socket is still open, not shut
  // for writing (false before migrate-incoming, and with StreamEnd::drop).
  bool stream_open() {
    std::lock_guard lock(m_mutex);
    pollfd p{m_watch.get(), POLLRDHUP, 0};
    return m_watch && ::poll(&p, 1, 0) == 0;
  }

  // How many stream bytes it has read so far.
  std::size_t received_so_far() {
    std::lock_guard lock(m_mutex);
    return m_received.size();
  }

  // The stream bytes it read, once it read to EOF (call after run_receiver
  // returned: its end of the stream socket is closed then).
  std::vector<std::uint8_t> received() {
    if (m_loader.joinable()) {
      m_loader.join();
    }
    std::lock_guard lock(m_mutex);
    return m_received;
  }

 private:
  void load(int fd) {
    std::uint8_t buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      std::lock_guard lock(m_mutex);
      m_received.insert(m_received.end(), buf, buf + n);
    }
    bool runs;
    {
      std::lock_guard lock(m_mutex);
      if (m_received != m_expected) {
        return;
      }
      runs = m_autostart;
      m_runstate = runs ? "running" : "paused";
    }
    if (runs) {
      qmp.emit("RESUME", m_resume_us);
    }
  }

  std::vector<std::uint8_t> m_expected;
  std::int64_t m_resume_us;
  std::mutex m_mutex;
  std::string m_runstate = "inmigrate";
  bool m_autostart = true;
  std::vector<std::uint8_t> m_received;
  Fd m_watch;  // a duplicate of QEMU's end of the stream socket
  std::thread m_loader;
};

struct LinkPair {
  std::unique_ptr<Link> sender;
  std::unique_ptr<Link> receiver;
};
// Two Links over a socketpair (a short I/O timeout: tests fail fast), as
// after a handshake.
inline LinkPair link_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    throw std::system_error(errno, std::generic_category(), "socketpair");
  }
  LinkPair p{std::make_unique<Link>(Fd(sv[0]), LinkOptions{0, std::chrono::seconds(5)}),
             std::make_unique<Link>(Fd(sv[1]), LinkOptions{0, std::chrono::seconds(5)})};
  p.sender->set_authenticated();
  p.receiver->set_authenticated();
  return p;
}

// Timeouts short enough for tests, long enough for a loaded machine.
inline SendOptions test_send_options() {
  SendOptions o;
  o.mode_timeout = std::chrono::seconds(5);
  o.result_timeout = std::chrono::seconds(5);
  o.running_timeout = std::chrono::seconds(5);
  return o;
}
inline ReceiveOptions test_receive_options(bool hold = false) {
  ReceiveOptions o;
  o.hold = hold;
  o.idle_timeout = std::chrono::seconds(5);
  o.resume_timeout = std::chrono::seconds(5);
  o.go_timeout = std::chrono::seconds(5);
  return o;
}

// Plays the source QEMU's side of its stream socket (the descriptor it got
// with getfd). `receiver_done` turns true once run_receiver has returned.
using StreamWriter = std::function<void(Fd stream, const std::atomic<bool>& receiver_done)>;

// Once `migrate` has been answered, QEMU writes `stream` whole, closes its
// socket and completes the migration (its STOP event at `stop_us`, after
// `stop_late_polls` polls). `wrote` tells whether all of it went out.
inline StreamWriter whole_stream(const std::vector<std::uint8_t>& stream, ScriptedSource& source,
                                 std::optional<std::int64_t> stop_us, bool& wrote, int stop_late_polls = 0) {
  return [&stream, &source, stop_us, &wrote, stop_late_polls](Fd fd, const std::atomic<bool>&) {
    wrote = source.qmp.wait_answered("migrate", std::chrono::seconds(10)) && send_all(fd.get(), stream);
    fd = Fd();
    source.complete(stop_us, stop_late_polls);
  };
}

struct Ends {
  Outcome sender;
  Outcome receiver;
};

// Runs the real sender (on this thread) and receiver (on another) between
// the two scripted QEMUs, with `writer` playing the source's stream.
inline Ends migrate(ScriptedSource& source, ScriptedDestination& destination, const SendOptions& send,
                    const ReceiveOptions& receive, StreamWriter writer) {
  auto links = link_pair();
  std::atomic<bool> receiver_done{false};
  Ends ends;
  std::thread receiver([&] {
    ends.receiver = run_receiver(receive, destination.qmp, *links.receiver);
    receiver_done = true;
  });
  std::thread qemu([&] {
    if (auto fd = source.qmp.wait_passed_fd(std::chrono::seconds(10))) {
      writer(std::move(*fd), receiver_done);
    }
  });
  ends.sender = run_sender(send, source.qmp, *links.sender);
  receiver.join();
  qemu.join();
  return ends;
}

}  // namespace utsushi::livemig::test

// Catch prints a ReportStatus by its --json name.
template <>
struct Catch::StringMaker<utsushi::livemig::ReportStatus> {
  static std::string convert(utsushi::livemig::ReportStatus s) { return std::string(utsushi::livemig::to_string(s)); }
};
