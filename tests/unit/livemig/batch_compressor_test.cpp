#include <zstd.h>

#include <catch2/catch.hpp>

#include "synthetic_stream.h"
#include "utsushi/livemig/batch_compressor.h"

using namespace utsushi;
using namespace utsushi::livemig;

TEST_CASE("livemig::LevelController climbs while the link is the bottleneck", "[livemig][zstd]") {
  LevelController c(1, 9);
  CHECK(c.level() == 1);
  LevelWindow link_bound{0.25, 0.02, 0.24};
  CHECK(c.update(link_bound) == 3);
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

TEST_CASE("livemig::LevelController honours a maximum between rungs and a pinned level", "[livemig][zstd]") {
  LevelController c(1, 6);
  LevelWindow link_bound{0.25, 0.01, 0.25};
  CHECK(c.update(link_bound) == 3);
  CHECK(c.update(link_bound) == 5);
  CHECK(c.update(link_bound) == 6);
  CHECK(c.update({0.25, 0.25, 0.25}) == 5);
  LevelController pinned(4, 4);
  CHECK(pinned.update(link_bound) == 4);
  CHECK(pinned.update({0.25, 0.25, 0.01}) == 4);
  // Nothing measured (an empty window) changes nothing.
  CHECK(c.update({0, 0, 0}) == 5);
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
