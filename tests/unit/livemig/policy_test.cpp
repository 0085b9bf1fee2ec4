#include <catch2/catch.hpp>

#include "utsushi/livemig/policy.h"

using namespace utsushi::livemig;
using namespace std::chrono;

TEST_CASE("livemig::decide raises the downtime step-wise within bounds", "[livemig][policy]") {
  PolicyConfig c;
  c.downtime_ms = 300;
  c.max_downtime_ms = 1000;
  c.rounds_per_step = 4;
  PolicyState s;
  s.qemu_limit_ms = qemu_downtime_limit(c, 300);
  MigrationStatus st;
  st.status = "active";
  st.expected_downtime_ms = 5000;
  st.dirty_sync_count = 2;
  CHECK(decide(c, s, st, {seconds(1), 0}).action == PolicyAction::none);
  st.dirty_sync_count = 4;
  auto d = decide(c, s, st, {seconds(2), 0});
  CHECK(d.action == PolicyAction::raise_downtime);
  CHECK(s.target_ms == 450);
  CHECK(d.qemu_limit_ms == qemu_downtime_limit(c, 450));
  st.dirty_sync_count = 5;
  CHECK(decide(c, s, st, {seconds(3), 0}).action == PolicyAction::none);
  for (std::uint64_t sync = 8; sync <= 40; sync += 4) {
    st.dirty_sync_count = sync;
    (void)decide(c, s, st, {seconds(4), 0});
  }
  CHECK(s.target_ms == 1000);  // never above the bound
}

TEST_CASE("livemig::decide leaves a converging guest alone and enforces the time limit", "[livemig][policy]") {
  PolicyConfig c;
  c.max_downtime_ms = 2000;
  c.time_limit = seconds(60);
  PolicyState s;
  s.qemu_limit_ms = qemu_downtime_limit(c, c.downtime_ms);
  MigrationStatus st;
  st.status = "active";
  st.dirty_sync_count = 8;
  st.expected_downtime_ms = 100;  // QEMU will switch over on its own
  CHECK(decide(c, s, st, {seconds(10), 0}).action == PolicyAction::none);
  CHECK(decide(c, s, st, {seconds(61), 0}).action == PolicyAction::cancel);
}

TEST_CASE("livemig::qemu_downtime_limit leaves room for the cut-over", "[livemig][policy]") {
  PolicyConfig c;
  c.cutover_ms = 60;
  CHECK(qemu_downtime_limit(c, 300) == 240);
  CHECK(qemu_downtime_limit(c, 80) == 40);
  CHECK(qemu_downtime_limit(c, 1) == 1);
}

TEST_CASE("livemig::decide holds QEMU's switch-over while the recent page rate cannot carry what remains",
          "[livemig][policy]") {
  PolicyConfig c;  // target 300 ms, hold over 2x, a 1 s rate window
  c.pace_switchover = true;
  PolicyState s;
  s.qemu_limit_ms = qemu_downtime_limit(c, 300);
  MigrationStatus st;
  st.status = "active";
  st.dirty_sync_count = 2;  // past QEMU's first pass, which is always held
  st.remaining = 300u << 20;
  // 25600 pages a second: 100 MiB/s, so 300 MiB would stop the guest ~3 s.
  auto held = decide(c, s, st, {milliseconds(0), 0});  // no rate yet: held
  CHECK(held.action == PolicyAction::set_limit);
  CHECK(held.qemu_limit_ms == 1);
  CHECK(decide(c, s, st, {milliseconds(200), 5120}).action == PolicyAction::none);  // under a third of the window
  CHECK_FALSE(estimate_stop_ms(c, s, st.remaining));
  CHECK(decide(c, s, st, {milliseconds(500), 12800}).action == PolicyAction::none);  // still held, now by the rate
  CHECK(estimate_stop_ms(c, s, st.remaining).value_or(0) == 3060);
  CHECK(decide(c, s, st, {milliseconds(1000), 25600}).action == PolicyAction::none);  // still held
  // The window slides: only the last second's rate counts (now 10 MiB/s).
  for (int t = 1100; t <= 2100; t += 100) {
    (void)decide(c, s, st, {milliseconds(t), 25600 + static_cast<std::uint64_t>(t - 1000) * 256 / 100});
  }
  CHECK(estimate_stop_ms(c, s, 10u << 20).value_or(0) == 1060);
  // Little enough left at that rate: QEMU's own limit again.
  st.remaining = 5u << 20;
  auto released = decide(c, s, st, {milliseconds(2200), 25600 + 1200 * 256 / 100});
  CHECK(released.action == PolicyAction::set_limit);
  CHECK(released.qemu_limit_ms == qemu_downtime_limit(c, 300));
}

TEST_CASE("livemig::decide scales QEMU's limit down when its bandwidth outruns the page rate", "[livemig][policy]") {
  PolicyConfig c;  // target 300 ms: limit 240 ms
  c.pace_switchover = true;
  PolicyState s;
  s.qemu_limit_ms = qemu_downtime_limit(c, 300);
  MigrationStatus st;
  st.status = "active";
  st.dirty_sync_count = 2;  // past QEMU's first pass
  st.remaining = 8u << 20;  // ~140 ms at the rate below: no hold
  // 15360 pages a second: 60 MiB/s.
  CHECK(decide(c, s, st, {milliseconds(0), 0}).qemu_limit_ms == 1);  // no rate yet: held
  st.mbps = 8 * 60.0 * 1.048576;  // QEMU's window: the same 60 MiB/s
  auto released = decide(c, s, st, {milliseconds(1000), 15360});
  CHECK(released.action == PolicyAction::set_limit);
  CHECK(released.qemu_limit_ms == 240);
  st.mbps *= 8;  // a window of cheap pages: 8 times the page rate
  auto d = decide(c, s, st, {milliseconds(1100), 16896});
  CHECK(d.action == PolicyAction::set_limit);
  CHECK(d.qemu_limit_ms == 30);  // QEMU's threshold: 240 ms at the page rate
  st.mbps *= 1.05;  // under 10% off: not worth a command
  CHECK(decide(c, s, st, {milliseconds(1200), 18432}).action == PolicyAction::none);
}

TEST_CASE("livemig::decide paces by the rate of QEMU's later passes, not its first", "[livemig][policy]") {
  PolicyConfig c;  // target 300 ms: hold over 600 ms
  c.pace_switchover = true;
  PolicyState s;
  MigrationStatus st;
  st.status = "active";
  st.dirty_sync_count = 1;
  st.remaining = 100u << 20;
  // The first pass: 256000 pages a second (1000 MiB/s of zeros and references): 100 MiB would take 160 ms,
  // but the first pass is held whatever its rate.
  CHECK(decide(c, s, st, {milliseconds(0), 0}).qemu_limit_ms == 1);
  CHECK(decide(c, s, st, {milliseconds(1000), 256000}).action == PolicyAction::none);
  CHECK(estimate_stop_ms(c, s, st.remaining).value_or(0) == 160);
  // The second pass begins: the first's rate is dropped, so no estimate, so still held.
  st.dirty_sync_count = 2;
  CHECK(decide(c, s, st, {milliseconds(1100), 258560}).action == PolicyAction::none);
  CHECK(s.qemu_limit_ms == 1);
  CHECK_FALSE(estimate_stop_ms(c, s, st.remaining));
  // Its dirty pages go at 10 MiB/s: still held, by the rate now; later syncs keep the window.
  for (int t = 1200; t <= 1600; t += 100) {
    st.dirty_sync_count = t < 1400 ? 2 : 3;
    CHECK(decide(c, s, st, {milliseconds(t), 258560 + static_cast<std::uint64_t>(t - 1100) * 256 / 100}).action ==
          PolicyAction::none);
  }
  CHECK(estimate_stop_ms(c, s, st.remaining).value_or(0) == 10060);
}

TEST_CASE("livemig::decide leaves the switch-over to QEMU without pace_switchover", "[livemig][policy]") {
  PolicyConfig c;
  PolicyState s;
  s.qemu_limit_ms = qemu_downtime_limit(c, 300);
  MigrationStatus st;
  st.status = "active";
  st.remaining = 300u << 20;
  st.mbps = 8000;
  CHECK(decide(c, s, st, {milliseconds(0), 0}).action == PolicyAction::none);
  CHECK(decide(c, s, st, {milliseconds(1000), 25600}).action == PolicyAction::none);
  CHECK(s.qemu_limit_ms == qemu_downtime_limit(c, 300));
}

TEST_CASE("livemig::decide holds the switch-over and raises nothing while the disks' pre-copy runs",
          "[livemig][policy]") {
  PolicyConfig c;  // target 300 ms, max 300: raise to 450 with max 1000
  c.pace_switchover = true;
  c.max_downtime_ms = 1000;
  PolicyState s;
  s.qemu_limit_ms = qemu_downtime_limit(c, 300);
  MigrationStatus st;
  st.status = "active";
  st.expected_downtime_ms = 5000;
  st.remaining = 4u << 20;
  // Past the first pass, a rate that would release the hold (60 MiB/s, 4 MiB left: ~130 ms).
  st.dirty_sync_count = 2;
  CHECK(decide(c, s, st, {milliseconds(0), 0, true}).qemu_limit_ms == 1);
  for (std::uint64_t sync = 2; sync <= 10; ++sync) {
    st.dirty_sync_count = sync;
    auto d = decide(c, s, st, {milliseconds(100 * sync), 1536 * sync, true});
    CHECK(d.action == PolicyAction::none);  // held at 1 ms already; no raise
  }
  CHECK(s.target_ms == 300);
  CHECK(s.qemu_limit_ms == 1);
  // The pre-copy is done: the same rate releases it, and the raise counts from here.
  auto released = decide(c, s, st, {milliseconds(1100), 1536 * 11, false});
  CHECK(released.action == PolicyAction::set_limit);
  CHECK(released.qemu_limit_ms == qemu_downtime_limit(c, 300));
  CHECK(s.target_ms == 300);
  st.dirty_sync_count = 14;
  CHECK(decide(c, s, st, {milliseconds(1200), 1536 * 12, false}).action == PolicyAction::raise_downtime);
}
