// qemu_control.h steps the sender and receiver phases rely on, against a
// scripted monitor (fake_monitor.h): waiting for the destination to load,
// and finding the STOP event a migration caused rather than an older one.
#include "utsushi/livemig/qemu_control.h"

#include <catch2/catch.hpp>
#include <chrono>

#include "fake_monitor.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace utsushi::livemig::test;
using namespace std::chrono;

namespace {

Reply runstate(const char* s) { return Reply::ok({{"status", s}}); }

}  // namespace

TEST_CASE("livemig wait_destination_loaded: through the loading states to running or paused",
          "[livemig][qemu_control][fake]") {
  auto final_state = GENERATE("running", "paused");
  FakeMonitor m;
  m.once("query-status", runstate("inmigrate"));
  m.once("query-status", runstate("restore-vm"));
  m.once("query-status", runstate("prelaunch"));
  m.on("query-status", runstate(final_state));
  auto r = wait_destination_loaded(m, seconds(10));
  REQUIRE(r);
  CHECK(*r == final_state);
  CHECK(m.count("query-status") == 4);
}

TEST_CASE("livemig wait_destination_loaded: any other state, a timeout and a lost monitor fail",
          "[livemig][qemu_control][fake]") {
  SECTION("a state outside loading: aborted, naming it") {
    FakeMonitor m;
    m.once("query-status", runstate("inmigrate"));
    m.on("query-status", runstate("shutdown"));
    auto r = wait_destination_loaded(m, seconds(10));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::aborted);
    CHECK_THAT(r.error().message(), Catch::Matchers::Contains("shutdown"));
  }
  SECTION("still loading when the time is up: unavailable") {
    FakeMonitor m;
    m.on("query-status", runstate("inmigrate"));
    auto t0 = steady_clock::now();
    auto r = wait_destination_loaded(m, milliseconds(100));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::unavailable);
    CHECK(steady_clock::now() - t0 >= milliseconds(100));
    CHECK(m.count("query-status") >= 2);
  }
  SECTION("the monitor gone: its error, in context") {
    FakeMonitor m;
    m.on("query-status", Reply::gone());
    auto r = wait_destination_loaded(m, seconds(10));
    REQUIRE_FALSE(r);
    CHECK(monitor_gone(r.error()));
    CHECK_THAT(r.error().message(), Catch::Matchers::Contains("destination QEMU after the stream"));
  }
}

TEST_CASE("livemig event_after: the first event newer than the one before, or none",
          "[livemig][qemu_control][fake]") {
  FakeMonitor m;
  m.emit("STOP", 1'000);
  std::optional<QmpEvent> before = m.last_event("STOP");
  REQUIRE(before);
  SECTION("only the old event: none, after the timeout") {
    auto t0 = steady_clock::now();
    CHECK_FALSE(event_after(m, "STOP", before, milliseconds(60)));
    CHECK(steady_clock::now() - t0 >= milliseconds(60));
  }
  SECTION("a newer one arriving while polling is found") {
    m.emit_late("STOP", 2'000, 3);
    auto ev = event_after(m, "STOP", before, seconds(10));
    REQUIRE(ev);
    CHECK(ev->timestamp_us == 2'000);
  }
  SECTION("without an earlier event any one counts") {
    auto ev = event_after(m, "STOP", std::nullopt, seconds(10));
    REQUIRE(ev);
    CHECK(ev->timestamp_us == 1'000);
  }
}
