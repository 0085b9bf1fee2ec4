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
  MigrationStatus st;
  st.status = "active";
  st.expected_downtime_ms = 5000;
  st.dirty_sync_count = 2;
  CHECK(decide(c, s, st, seconds(1)).action == PolicyAction::none);
  st.dirty_sync_count = 4;
  auto d = decide(c, s, st, seconds(2));
  CHECK(d.action == PolicyAction::raise_downtime);
  CHECK(s.target_ms == 450);
  CHECK(d.qemu_limit_ms == qemu_downtime_limit(c, 450));
  st.dirty_sync_count = 5;
  CHECK(decide(c, s, st, seconds(3)).action == PolicyAction::none);
  for (std::uint64_t sync = 8; sync <= 40; sync += 4) {
    st.dirty_sync_count = sync;
    decide(c, s, st, seconds(4));
  }
  CHECK(s.target_ms == 1000);  // never above the bound
}

TEST_CASE("livemig::decide leaves a converging guest alone and enforces the time limit", "[livemig][policy]") {
  PolicyConfig c;
  c.max_downtime_ms = 2000;
  c.time_limit = seconds(60);
  PolicyState s;
  MigrationStatus st;
  st.status = "active";
  st.dirty_sync_count = 8;
  st.expected_downtime_ms = 100;  // QEMU will switch over on its own
  CHECK(decide(c, s, st, seconds(10)).action == PolicyAction::none);
  CHECK(decide(c, s, st, seconds(61)).action == PolicyAction::cancel);
}

TEST_CASE("livemig::qemu_downtime_limit leaves room for the cut-over", "[livemig][policy]") {
  PolicyConfig c;
  c.cutover_ms = 60;
  CHECK(qemu_downtime_limit(c, 300) == 240);
  CHECK(qemu_downtime_limit(c, 80) == 40);
  CHECK(qemu_downtime_limit(c, 1) == 1);
}
