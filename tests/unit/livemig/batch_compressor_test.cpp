#include <zstd.h>

#include <catch2/catch.hpp>

#include "synthetic_stream.h"
#include "utsushi/livemig/batch_compressor.h"

using namespace utsushi;
using namespace utsushi::livemig;

TEST_CASE("livemig::LevelController starts at 3 and climbs by windows while the link is the bottleneck",
          "[livemig][zstd]") {
  LevelController c(1, 9);
  CHECK(c.level() == 3);
  LevelWindow link_bound{0.25, 0.02, 0.24};  // no byte count: the rate stays unknown
  CHECK(c.update(link_bound) == 5);
  CHECK(c.update(link_bound) == 7);
  CHECK(c.update(link_bound) == 9);
  CHECK(c.update(link_bound) == 9);  // capped
  // Balanced: stays.
  CHECK(c.update({0.25, 0.15, 0.24}) == 9);
  // zstd nearly as slow as the link: one step down.
  CHECK(c.update({0.25, 0.23, 0.24}) == 7);
  // The link waits for zstd: down again.
  CHECK(c.update({0.25, 0.2, 0.05}) == 5);
}

TEST_CASE("livemig::LevelController honours its bounds, a maximum between rungs and a pinned level", "[livemig][zstd]") {
  CHECK(LevelController(1, 2).level() == 2);  // the start (3) clamped into [min, max]
  CHECK(LevelController(5, 9).level() == 5);
  LevelController c(1, 6);
  LevelWindow link_bound{0.25, 0.01, 0.25};
  CHECK(c.update(link_bound) == 5);
  CHECK(c.update(link_bound) == 6);
  CHECK(c.update(link_bound) == 6);
  CHECK(c.update({0.25, 0.25, 0.25}) == 5);
  CHECK(c.update({0.25, 0.25, 0.25}) == 3);
  CHECK(c.update({0.25, 0.25, 0.25}) == 1);
  CHECK(c.update({0.25, 0.25, 0.25}) == 1);
  LevelController pinned(4, 4);
  CHECK(pinned.update(link_bound) == 4);
  CHECK(pinned.update({0.25, 0.25, 0.01}) == 4);
  // Nothing measured (an empty window) changes nothing.
  CHECK(c.update({0, 0, 0}) == 1);
}

TEST_CASE("livemig::LevelController learns the link's rate from busy windows only", "[livemig][zstd]") {
  LevelController c(1, 9);
  CHECK(c.link_rate() == 0);
  CHECK(c.on_batch(1.0, 1000) == 3);  // rate unknown: batches decide nothing
  // Busy 60% of the window: not the bottleneck yet, no rate.
  c.update({0.25, 0.01, 0.15, 5e6});
  CHECK(c.link_rate() == 0);
  // Busy 96%: 8 MB in 0.24 s of sending.
  c.update({0.25, 0.01, 0.24, 8e6});
  CHECK(c.link_rate() == Approx(8e6 / 0.24));
  // A comparable later window moves it part of the way.
  c.update({0.25, 0.01, 0.25, 9e6});
  CHECK(c.link_rate() > 8e6 / 0.24);
  CHECK(c.link_rate() < 9e6 / 0.25);
  // An idle link (10% busy) is not the bottleneck: the rate is forgotten.
  c.update({0.25, 0.01, 0.025, 1e6});
  CHECK(c.link_rate() == 0);
}

TEST_CASE("livemig::LevelController steps down at once on a batch slower than the link", "[livemig][zstd]") {
  LevelController c(1, 9);
  // Climb to 9 by windows, then learn the rate: 32 MB/s.
  for (int i = 0; i < 3; ++i) {
    c.update({0.25, 0.02, 0.24});
  }
  REQUIRE(c.level() == 9);
  c.update({0.25, 0.02, 0.25, 8e6});
  REQUIRE(c.link_rate() == Approx(32e6));
  // Once the rate is known, windows no longer move the level.
  CHECK(c.update({0.25, 0.24, 0.25, 8e6}) == 9);
  // 400 KB take the link 12.5 ms. A batch that took 10 ms (r = 0.8) is fine.
  CHECK(c.on_batch(0.010, 400e3) == 9);
  // One batch a little slow (r = 1.2) is tolerated; two running are not.
  CHECK(c.on_batch(0.015, 400e3) == 9);
  CHECK(c.on_batch(0.015, 400e3) == 7);
  // 1.5 < r <= 2.5: one step at once.
  CHECK(c.on_batch(0.025, 400e3) == 5);
  // r > 2.5 (text after random pages): two steps at once.
  CHECK(c.on_batch(0.040, 400e3) == 1);
  CHECK(c.on_batch(0.040, 400e3) == 1);  // the minimum holds
}

TEST_CASE("livemig::LevelController climbs after three fast batches running", "[livemig][zstd]") {
  LevelController c(1, 6);
  c.update({0.25, 0.2, 0.25, 8e6});  // rate known (32 MB/s) in a window where zstd was slow: no move
  REQUIRE(c.link_rate() > 0);
  REQUIRE(c.level() == 3);
  // 400 KB = 12.5 ms of link; 5 ms of work is r = 0.4.
  CHECK(c.on_batch(0.005, 400e3) == 3);
  CHECK(c.on_batch(0.005, 400e3) == 3);
  CHECK(c.on_batch(0.005, 400e3) == 5);
  // A middling batch (r = 0.6) breaks the run.
  CHECK(c.on_batch(0.005, 400e3) == 5);
  CHECK(c.on_batch(0.0075, 400e3) == 5);
  CHECK(c.on_batch(0.005, 400e3) == 5);
  CHECK(c.on_batch(0.005, 400e3) == 5);
  CHECK(c.on_batch(0.005, 400e3) == 6);  // the maximum, between rungs
  for (int i = 0; i < 8; ++i) {
    CHECK(c.on_batch(0.001, 400e3) == 6);
  }
  // A pinned level never learns a rate and never moves.
  LevelController pinned(3, 3);
  CHECK(pinned.update({0.25, 0.01, 0.25, 8e6}) == 3);
  CHECK(pinned.link_rate() == 0);
  CHECK(pinned.update({0.25, 0.25, 0.25, 8e6}) == 3);
  CHECK(pinned.on_batch(1.0, 400e3) == 3);
}

TEST_CASE("livemig::LevelController keeps, replaces and forgets the link's rate", "[livemig][zstd]") {
  LevelController c(1, 9);
  c.update({0.25, 0.02, 0.25, 8e6});
  REQUIRE(c.link_rate() == Approx(32e6));
  // Busy 50% with zstd idle (QEMU paused): the rate is kept, the level too.
  CHECK(c.update({0.25, 0.02, 0.125, 4e6}) == 3);
  CHECK(c.link_rate() == Approx(32e6));
  // A rate more than twice the old one replaces it outright.
  c.update({0.25, 0.02, 0.25, 25e6});
  CHECK(c.link_rate() == Approx(100e6));
  // The link became faster than zstd at this level: busy 60%, zstd nearly as slow as the link.
  // The learned rate (100 MB/s) would call the batches fast; the window forgets it and steps down.
  CHECK(c.update({0.25, 0.14, 0.15, 2e6}) == 1);
  CHECK(c.link_rate() == 0);
}

TEST_CASE("livemig::LevelController's per-batch thresholds", "[livemig][zstd]") {
  auto at_7 = [] {
    LevelController c(1, 9);
    c.update({0.25, 0.02, 0.24});
    c.update({0.25, 0.02, 0.24});
    c.update({0.25, 0.02, 0.25, 8e6});  // 32 MB/s; 400 KB = 12.5 ms
    REQUIRE(c.level() == 7);
    return c;
  };
  auto c = at_7();
  CHECK(c.on_batch(0.0125 * 1.49, 400e3) == 7);  // r just under 1.5: slow, not yet
  CHECK(c.on_batch(0.0125 * 1.01, 400e3) == 5);  // the second slow batch running
  c = at_7();
  CHECK(c.on_batch(0.0125 * 1.51, 400e3) == 5);  // r > 1.5: at once
  c = at_7();
  CHECK(c.on_batch(0.0125 * 2.49, 400e3) == 5);  // r just under 2.5: one step
  c = at_7();
  CHECK(c.on_batch(0.0125 * 2.51, 400e3) == 3);  // r > 2.5: two steps
  c = at_7();
  CHECK(c.on_batch(0.0125 * 0.99, 400e3) == 7);  // r just under 1: not slow
  CHECK(c.on_batch(0.0125 * 0.99, 400e3) == 7);
  for (int i = 0; i < 3; ++i) {
    c.on_batch(0.0125 * 0.51, 400e3);            // r just over 0.5: not fast
  }
  CHECK(c.level() == 7);
}

TEST_CASE("livemig::BatchCompressor output decodes as one stream across level changes", "[livemig][zstd]") {
  BatchCompressor comp(1);
  ZstdDCtx dctx(ZSTD_createDCtx());
  Bytes all_in;
  Bytes all_out;
  for (int i = 0; i < 6; ++i) {
    Bytes batch = livemig::test::random_page(static_cast<std::uint64_t>(i));
    batch.resize(8192, static_cast<std::uint8_t>(i));  // half random, half constant
    if (i == 2) {
      comp.set_level(5);
    }
    if (i == 4) {
      comp.set_level(1);
    }
    Bytes z;
    REQUIRE(comp.compress(batch, z));
    CHECK(z.size() < batch.size());
    // Each batch decodes completely from its own frame bytes (the receiver's rule).
    Bytes raw(batch.size());
    ZSTD_inBuffer in{z.data(), z.size(), 0};
    ZSTD_outBuffer out{raw.data(), raw.size(), 0};
    while (in.pos < in.size) {
      std::size_t r = ZSTD_decompressStream(dctx.get(), &out, &in);
      REQUIRE(!ZSTD_isError(r));
    }
    CHECK(out.pos == raw.size());
    CHECK(raw == batch);
  }
}

TEST_CASE("livemig::LevelController never climbs on a saturated CPU and steps down when the link runs dry",
          "[livemig][zstd]") {
  LevelController c(1, 9);
  // A link-bound window (busy 96%, zstd 8% of it) climbs while the CPU has idle time...
  CHECK(c.update({0.25, 0.02, 0.24, 0, 0.40}) == 5);
  CHECK_FALSE(c.cpu_saturated());
  // ...and holds on a saturated one (idle 2%): zstd's time would be missed elsewhere.
  CHECK(c.update({0.25, 0.02, 0.24, 0, 0.02}) == 5);
  CHECK(c.cpu_saturated());
  // Saturated and the link dry (busy 40%), zstd itself fast: one step down a window.
  CHECK(c.update({0.25, 0.02, 0.10, 0, 0.0}) == 3);
  CHECK(c.update({0.25, 0.02, 0.10, 0, 0.0}) == 1);
  CHECK(c.update({0.25, 0.02, 0.10, 0, 0.0}) == 1);  // bounded by the minimum
  // Idle unknown (negative): the rules without the CPU, as before.
  CHECK(c.update({0.25, 0.02, 0.24, 0, -1}) == 3);
  CHECK_FALSE(c.cpu_saturated());
}

TEST_CASE("livemig::LevelController's batches do not raise the level while the CPU is saturated",
          "[livemig][zstd]") {
  LevelController c(1, 9);
  // Learn the rate (32 MB/s) on a saturated CPU with the link busy: level kept.
  REQUIRE(c.update({0.25, 0.02, 0.25, 8e6, 0.01}) == 3);
  REQUIRE(c.link_rate() == Approx(32e6));
  // Fast batches (r = 0.2) would climb after three; saturated, they do not.
  for (int i = 0; i < 6; ++i) {
    CHECK(c.on_batch(0.0025, 400e3) == 3);
  }
  // A slow batch still steps down at once.
  CHECK(c.on_batch(0.040, 400e3) == 1);
  // With idle CPU again (and the link busy), fast batches climb.
  REQUIRE(c.update({0.25, 0.02, 0.25, 8e6, 0.30}) == 1);
  c.on_batch(0.0025, 400e3);
  c.on_batch(0.0025, 400e3);
  CHECK(c.on_batch(0.0025, 400e3) == 3);
}

TEST_CASE("livemig level_bounds: --zstd-level pins, else 1 up to --zstd-max-level", "[livemig][zstd]") {
  CHECK(level_bounds(5, 9).min == 5);
  CHECK(level_bounds(5, 9).max == 5);
  CHECK(level_bounds(0, 9).min == 1);
  CHECK(level_bounds(0, 9).max == 9);
  CHECK(level_bounds(0, 0).max == 1);
}
