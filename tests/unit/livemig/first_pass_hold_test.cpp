// The first-pass hold (first_pass_hold.h): the watch that finds the end of
// QEMU's first pass in a parsed stream, and the hold's monitor commands
// against a scripted monitor (fake_monitor.h).
#include "utsushi/livemig/first_pass_hold.h"

#include <catch2/catch.hpp>
#include <thread>

#include "fake_monitor.h"
#include "rebuild_sink.h"
#include "synthetic_stream.h"
#include "utsushi/livemig/qemu_control.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace utsushi::livemig::test;

namespace {

// Two blocks of 10 and 2 pages: a first pass over all 12, then a second
// pass of 3 pages, then the device state.
Bytes two_pass_stream() {
  StreamBuilder s;
  s.header();
  s.ram_start({{"pc.ram", 10 * 4096}, {"vga.vram", 2 * 4096}});
  s.section(0x02);
  for (std::uint64_t i = 0; i < 10; ++i) {
    if (i % 3 == 0) {
      s.zero(i, i == 0 ? "pc.ram" : "");
    } else {
      s.page(i, i == 0 ? "pc.ram" : "", random_page(static_cast<std::uint32_t>(i)));
    }
  }
  s.page(0, "vga.vram", random_page(50));
  s.zero(1, "");
  s.eos();
  s.footer();
  s.section(0x02);
  for (std::uint64_t i : {2, 5, 7}) {
    s.page(i, i == 2 ? "pc.ram" : "", random_page(static_cast<std::uint32_t>(100 + i)));
  }
  s.eos();
  s.footer();
  s.section(0x03);
  s.eos();
  s.footer();
  s.tail();
  return s.bytes;
}

// Parses `in` through a watch with `margin`; returns how many records the
// inner sink had seen each time the hook ran.
std::vector<std::uint64_t> hook_points(const Bytes& in, std::uint64_t margin, RebuildSink& inner) {
  std::vector<std::uint64_t> seen;
  FirstPassWatch watch(inner, margin, [&] { seen.push_back(inner.pages.size()); });
  SpanReader reader(in, 100);
  REQUIRE(parse_stream(reader, watch));
  return seen;
}

}  // namespace

TEST_CASE("livemig FirstPassWatch: one call, as the first pass comes within the margin of its end",
          "[livemig][first_pass_hold]") {
  const Bytes in = two_pass_stream();
  RebuildSink inner;
  SECTION("margin 3 of 12 pages: before the 9th record") {
    CHECK(hook_points(in, 3, inner) == std::vector<std::uint64_t>{8});
  }
  SECTION("margin 0: before the first pass's last record") {
    CHECK(hook_points(in, 0, inner) == std::vector<std::uint64_t>{11});
  }
  SECTION("a margin over the RAM's pages: at the first record") {
    CHECK(hook_points(in, 100, inner) == std::vector<std::uint64_t>{0});
  }
  // Whatever the hook does, the inner sink gets every event unchanged.
  CHECK(inner.out == in);
  CHECK(inner.pages.size() == 15);
}

TEST_CASE("livemig FirstPassWatch: without a hook it only forwards", "[livemig][first_pass_hold]") {
  const Bytes in = two_pass_stream();
  RebuildSink inner;
  FirstPassWatch watch(inner, 3, nullptr);
  SpanReader reader(in, 7);
  REQUIRE(parse_stream(reader, watch));
  CHECK(inner.out == in);
}

namespace {

std::vector<std::uint64_t> bandwidths_set(const FakeMonitor& m) {
  std::vector<std::uint64_t> out;
  for (const MonitorCall& c : m.calls()) {
    REQUIRE(c.command == "migrate-set-parameters");
    out.push_back(c.arguments.at("max-bandwidth").get<std::uint64_t>());
  }
  return out;
}

}  // namespace

TEST_CASE("livemig FirstPassHold: holds QEMU at the first pass's end until released", "[livemig][first_pass_hold][fake]") {
  FakeMonitor m;
  m.on("migrate-set-parameters", Reply::ok());
  FirstPassHold hold(m);
  CHECK_FALSE(hold.held());
  std::thread pump([&] { hold.near_end(); });  // the pump's thread
  pump.join();
  CHECK(hold.held());
  hold.near_end();  // once held, no second command
  REQUIRE(hold.release());
  CHECK_FALSE(hold.held());
  REQUIRE(hold.release());  // released already: no command
  hold.near_end();          // after the release: never held again
  CHECK_FALSE(hold.held());
  CHECK(bandwidths_set(m) == std::vector<std::uint64_t>{k_hold_bandwidth, k_open_bandwidth});
}

TEST_CASE("livemig FirstPassHold: the disks ended first: no hold, no command", "[livemig][first_pass_hold][fake]") {
  FakeMonitor m;
  m.on("migrate-set-parameters", Reply::ok());
  FirstPassHold hold(m);
  REQUIRE(hold.release());
  hold.near_end();
  CHECK_FALSE(hold.held());
  CHECK(m.calls().empty());
}

TEST_CASE("livemig FirstPassHold: a hold QEMU refused is no hold, a failed release says why",
          "[livemig][first_pass_hold][fake]") {
  FakeMonitor m;
  SECTION("QEMU refuses the hold: nothing to release") {
    m.once("migrate-set-parameters", Reply::qmp_error("Parameter 'max-bandwidth' expects a size"));
    FirstPassHold hold(m);
    hold.near_end();
    CHECK_FALSE(hold.held());
    REQUIRE(hold.release());
    CHECK(m.count("migrate-set-parameters") == 1);
  }
  SECTION("the monitor is gone at the release") {
    m.once("migrate-set-parameters", Reply::ok());
    m.on("migrate-set-parameters", Reply::gone());
    FirstPassHold hold(m);
    hold.near_end();
    REQUIRE(hold.held());
    auto r = hold.release();
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("max-bandwidth") != std::string::npos);
  }
}
