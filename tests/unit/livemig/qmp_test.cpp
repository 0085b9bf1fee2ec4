// QmpClient (qmp.h) against a scripted QMP peer on a real UNIX socket: the
// greeting and capability negotiation, replies matched by id with events kept,
// descriptor passing, and a peer that lies, stalls, floods or hangs up.
#include "utsushi/livemig/qmp.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "test_support.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace std::chrono;
using nlohmann::json;

namespace {

constexpr const char* k_greeting = R"({"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}})"
                                   "\n";

// One connection's worth of peer behaviour, run on its own thread.
class QmpPeer {
 public:
  using Script = std::function<void(QmpPeer&)>;

  explicit QmpPeer(Script script) : m_path(m_dir.file("qmp.sock")) {
    m_listen = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, m_path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(m_listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(m_listen, 1) == 0);
    m_thread = std::thread([this, script = std::move(script)] {
      m_conn = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
      if (m_conn >= 0) {
        script(*this);
      }
    });
  }
  ~QmpPeer() {
    ::shutdown(m_listen, SHUT_RDWR);
    m_thread.join();
    if (m_conn >= 0) ::close(m_conn);
    ::close(m_listen);
  }
  const std::string& path() const { return m_path; }

  void send(const std::string& text) { (void)::send(m_conn, text.data(), text.size(), MSG_NOSIGNAL); }
  // Reads one request line; with `fd` set, also the descriptor passed with it.
  json receive(int* fd = nullptr) {
    std::string line;
    char c = 0;
    for (;;) {
      iovec iov{&c, 1};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      if (::recvmsg(m_conn, &msg, 0) != 1) return json();
      if (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr && fd != nullptr && cm->cmsg_type == SCM_RIGHTS) {
        std::memcpy(fd, CMSG_DATA(cm), sizeof(int));
      }
      if (c == '\n') return json::parse(line, nullptr, false);
      line.push_back(c);
    }
  }
  // Greets, accepts qmp_capabilities.
  void handshake() {
    send(k_greeting);
    json caps = receive();
    send(json{{"return", json::object()}, {"id", caps["id"]}}.dump() + "\n");
  }
  void hang_up() {
    ::close(m_conn);
    m_conn = -1;
  }

 private:
  test::TempDir m_dir;
  std::string m_path;
  int m_listen = -1;
  int m_conn = -1;
  std::thread m_thread;
};

Result<QmpClient> connect(const QmpPeer& peer, milliseconds timeout = milliseconds(5000)) {
  return QmpClient::connect(peer.path(), timeout);
}

}  // namespace

TEST_CASE("QmpClient: replies matched by id, events kept, errors named", "[livemig][qmp]") {
  QmpPeer peer([](QmpPeer& p) {
    p.handshake();
    json q = p.receive();
    // A stale reply, an event, then the answer: the event is kept, the stale reply skipped.
    p.send(R"({"return": {"status": "stale"}, "id": 999})" "\n");
    p.send(R"({"event": "STOP", "data": {}, "timestamp": {"seconds": 2, "microseconds": 5}})" "\n\n");
    p.send(json{{"return", {{"status", "running"}}}, {"id", q["id"]}}.dump() + "\n");
    json bad = p.receive();
    p.send(json{{"error", {{"class", "GenericError"}, {"desc", "no such device"}}}, {"id", bad["id"]}}.dump() + "\n");
  });
  auto c = connect(peer);
  REQUIRE(c);
  auto status = c->execute("query-status");
  REQUIRE(status);
  CHECK(status->value("status", "") == "running");
  auto stop = c->last_event("STOP");
  REQUIRE(stop);
  CHECK(stop->timestamp_us == 2000005);
  auto ev = c->wait_event("STOP", milliseconds(10));
  CHECK(ev);
  auto refused = c->execute("device_del", {{"id", "nic0"}});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Errc::failed_precondition);
  CHECK(refused.error().message().find("no such device") != std::string::npos);
}

TEST_CASE("QmpClient: a descriptor travels with its command", "[livemig][qmp]") {
  int received = -1;
  QmpPeer peer([&](QmpPeer& p) {
    p.handshake();
    json q = p.receive(&received);
    p.send(json{{"return", json::object()}, {"id", q["id"]}}.dump() + "\n");
  });
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  auto c = connect(peer);
  REQUIRE(c);
  REQUIRE(c->execute("getfd", {{"fdname", "migrate"}}, fds[1]));
  REQUIRE(received >= 0);
  struct stat a {}, b {};
  REQUIRE(::fstat(fds[1], &a) == 0);
  REQUIRE(::fstat(received, &b) == 0);
  CHECK(a.st_ino == b.st_ino);
  ::close(received);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("QmpClient: what is not a QMP monitor is refused at connect", "[livemig][qmp]") {
  SECTION("no greeting") {
    QmpPeer peer([](QmpPeer& p) { p.send("{\"hello\": 1}\n"); });
    auto c = connect(peer);
    REQUIRE_FALSE(c);
    CHECK(c.error().code() == Errc::corruption);
  }
  SECTION("not JSON") {
    QmpPeer peer([](QmpPeer& p) { p.send("SSH-2.0-OpenSSH_9.2\n"); });
    auto c = connect(peer);
    REQUIRE_FALSE(c);
    CHECK(c.error().code() == Errc::corruption);
  }
  SECTION("silent: the timeout ends the wait") {
    QmpPeer peer([](QmpPeer& p) { p.receive(); });
    auto t0 = steady_clock::now();
    auto c = connect(peer, milliseconds(300));
    REQUIRE_FALSE(c);
    CHECK(c.error().code() == Errc::unavailable);
    CHECK(steady_clock::now() - t0 < seconds(5));
  }
  SECTION("no socket") {
    test::TempDir dir;
    auto c = QmpClient::connect(dir.file("absent.sock"), milliseconds(300));
    REQUIRE_FALSE(c);
    CHECK(c.error().code() == Errc::unavailable);
  }
}

TEST_CASE("QmpClient: a hostile monitor gives errors, never exceptions or unbounded memory", "[livemig][qmp]") {
  SECTION("malformed error and event members") {
    QmpPeer peer([](QmpPeer& p) {
      p.handshake();
      json q = p.receive();
      p.send(R"({"event": 42, "data": "x", "timestamp": "late"})" "\n");
      p.send(json{{"error", "not an object"}, {"id", q["id"]}}.dump() + "\n");
    });
    auto c = connect(peer);
    REQUIRE(c);
    auto r = c->execute("query-status");
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::failed_precondition);
  }
  SECTION("a line that never ends") {
    QmpPeer peer([](QmpPeer& p) {
      p.handshake();
      p.receive();
      std::string junk(1 << 20, 'x');
      for (int i = 0; i < 64; ++i) p.send(junk);
    });
    auto c = connect(peer);
    REQUIRE(c);
    auto r = c->execute("query-status");
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::corruption);
  }
  SECTION("hang-up mid-command: the monitor is gone") {
    QmpPeer peer([](QmpPeer& p) {
      p.handshake();
      p.receive();
      p.hang_up();
    });
    auto c = connect(peer);
    REQUIRE(c);
    auto r = c->execute("query-status");
    REQUIRE_FALSE(r);
    CHECK(monitor_gone(r.error()));
    auto e = c->wait_event("RESUME", milliseconds(2000));
    REQUIRE_FALSE(e);
    CHECK(monitor_gone(e.error()));
  }
}
