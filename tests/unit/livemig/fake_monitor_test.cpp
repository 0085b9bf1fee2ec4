// The scripted monitor itself (fake_monitor.h): the session tests rely on it
// answering as the Monitor contract (monitor.h) says a QEMU monitor does.
#include "fake_monitor.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

using namespace utsushi;
using namespace utsushi::livemig;
using namespace utsushi::livemig::test;
using namespace std::chrono;
using nlohmann::json;

TEST_CASE("livemig fake monitor: once() answers before on(), in order, and unscripted commands are listed",
          "[livemig][fake]") {
  FakeMonitor m;
  m.on("query-status", Reply::ok({{"status", "running"}}));
  m.once("query-status", Reply::ok({{"status", "paused"}}));
  m.once("query-status", Reply::qmp_error("busy"));
  CHECK(m.execute("query-status")->value("status", "") == "paused");
  auto refused = m.execute("query-status");
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Errc::failed_precondition);
  CHECK_FALSE(monitor_gone(refused.error()));
  CHECK(m.execute("query-status")->value("status", "") == "running");
  CHECK(m.execute("query-status")->value("status", "") == "running");
  auto unknown = m.execute("query-kvm", {{"x", 1}});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code() == Errc::internal);
  CHECK(m.unscripted() == std::vector<std::string>{"query-kvm"});
  CHECK(m.count("query-status") == 4);
  CHECK(m.calls().back().arguments == json{{"x", 1}});
}

TEST_CASE("livemig fake monitor: a late reply is not a gone monitor, a gone one stays gone", "[livemig][fake]") {
  FakeMonitor m;
  m.on("quit", Reply::ok());
  m.once("quit", Reply::late());
  m.once("cont", Reply::gone());
  m.emit("STOP", 5);
  auto late = m.execute("quit");
  REQUIRE_FALSE(late);
  CHECK(late.error().code() == Errc::unavailable);
  CHECK_FALSE(monitor_gone(late.error()));
  CHECK(m.execute("quit"));
  auto gone = m.execute("cont");
  REQUIRE_FALSE(gone);
  CHECK(monitor_gone(gone.error()));
  // From now on everything finds it gone, events already received stay.
  auto after = m.execute("quit");
  REQUIRE_FALSE(after);
  CHECK(monitor_gone(after.error()));
  CHECK_FALSE(m.poll_events());
  CHECK(m.wait_event("STOP", milliseconds(0))->timestamp_us == 5);
  CHECK(monitor_gone(m.wait_event("RESUME", milliseconds(0)).error()));
  CHECK(m.last_event("STOP")->timestamp_us == 5);
}

TEST_CASE("livemig fake monitor: events arrive now, with a reply, or after polls", "[livemig][fake]") {
  FakeMonitor m;
  m.on("migrate", Reply::ok().with_event("MIGRATION", 7, {{"status", "setup"}}));
  m.emit("STOP", 1);
  m.emit_late("STOP", 3, 2);
  CHECK(m.last_event("STOP")->timestamp_us == 1);
  CHECK_FALSE(m.last_event("MIGRATION"));
  REQUIRE(m.execute("migrate"));
  CHECK(m.last_event("MIGRATION")->data.value("status", "") == "setup");
  REQUIRE(m.poll_events());
  CHECK(m.last_event("STOP")->timestamp_us == 1);
  REQUIRE(m.poll_events());
  CHECK(m.last_event("STOP")->timestamp_us == 3);
  // wait_event returns the first one received.
  CHECK(m.wait_event("STOP", milliseconds(0))->timestamp_us == 1);
  auto none = m.wait_event("RESUME", milliseconds(20));
  REQUIRE_FALSE(none);
  CHECK(none.error().code() == Errc::unavailable);
  CHECK_FALSE(monitor_gone(none.error()));
}

TEST_CASE("livemig fake monitor: a descriptor passed with a successful command is kept", "[livemig][fake]") {
  FakeMonitor m;
  m.on("getfd", Reply::ok());
  m.once("getfd", Reply::qmp_error("no fd"));
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  Fd ours(sv[0]);
  Fd theirs(sv[1]);
  CHECK_FALSE(m.execute("getfd", {{"fdname", "a"}}, theirs.get()));
  CHECK_FALSE(m.wait_passed_fd(milliseconds(0)));
  REQUIRE(m.execute("getfd", {{"fdname", "b"}}, theirs.get()));
  CHECK(m.calls().back().passed_fd);
  theirs = Fd();  // the caller's copy goes; the fake's stays
  auto kept = m.wait_passed_fd(milliseconds(0));
  REQUIRE(kept);
  REQUIRE(::send(ours.get(), "x", 1, MSG_NOSIGNAL) == 1);
  char c = 0;
  CHECK(::recv(kept->get(), &c, 1, 0) == 1);
  CHECK(c == 'x');
}
