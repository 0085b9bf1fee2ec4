#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <vector>

#include "utsushi/livemig/shipper.h"

using namespace utsushi;
using namespace utsushi::livemig;

namespace {

OutFrame frame(std::uint8_t tag, std::size_t size = 10) {
  return OutFrame{FrameType::disk_data, Bytes(size, tag), 0, static_cast<std::uint32_t>(size)};
}

}  // namespace

TEST_CASE("livemig::Shipper sends every frame in order and counts them with their headers", "[livemig][shipper]") {
  std::mutex m;
  std::vector<std::uint8_t> tags;
  Shipper s(2, [&](const OutFrame& f) -> Result<void> {
    std::lock_guard lock(m);
    tags.push_back(f.payload.at(0));
    return {};
  });
  for (std::uint8_t i = 0; i < 50; ++i) {
    REQUIRE(s.push(frame(i)));
  }
  REQUIRE(s.finish());
  REQUIRE(tags.size() == 50);
  for (std::uint8_t i = 0; i < 50; ++i) {
    CHECK(tags[i] == i);
  }
  CHECK(s.shipped_bytes() == 50 * (10 + k_frame_header));
  CHECK_FALSE(s.error());
}

TEST_CASE("livemig::Shipper holds at most its capacity between the producer and the link", "[livemig][shipper]") {
  constexpr std::size_t capacity = 3;
  std::atomic<std::size_t> pushed{0};
  std::atomic<std::size_t> sent{0};
  std::atomic<std::size_t> worst{0};
  Shipper s(capacity, [&](const OutFrame&) -> Result<void> {
    // The frame being sent, the queue, and the one push that may be returning.
    std::size_t in_flight = pushed.load() - sent.load();
    worst = std::max(worst.load(), in_flight);
    sent++;
    return {};
  });
  for (int i = 0; i < 200; ++i) {
    REQUIRE(s.push(frame(1)));
    pushed++;
  }
  REQUIRE(s.finish());
  CHECK(sent == 200);
  CHECK(worst <= capacity + 1);
}

TEST_CASE("livemig::Shipper reports the first send error to push and finish and sends nothing after it",
          "[livemig][shipper]") {
  std::atomic<int> calls{0};
  Shipper s(2, [&](const OutFrame& f) -> Result<void> {
    calls++;
    if (f.payload.at(0) == 5) {
      return fail(Errc::unavailable, "link down");
    }
    return {};
  });
  bool push_failed = false;
  for (std::uint8_t i = 0; i < 100 && !push_failed; ++i) {
    auto r = s.push(frame(i));
    if (!r) {
      push_failed = true;
      CHECK(r.error().code() == Errc::unavailable);
    }
  }
  auto done = s.finish();
  REQUIRE_FALSE(done);
  CHECK(done.error().message().find("link down") != std::string::npos);
  CHECK(calls == 6);  // frames 0-5; none after the failure
}

TEST_CASE("livemig::Shipper abandon drops what waits and keeps its reason", "[livemig][shipper]") {
  std::atomic<int> calls{0};
  {
    Shipper s(4, [&](const OutFrame&) -> Result<void> {
      calls++;
      return {};
    });
    REQUIRE(s.push(frame(1)));
    s.abandon(Error(Errc::aborted, "the pass failed"));
    REQUIRE(s.error());
    CHECK(s.error()->code() == Errc::aborted);
    CHECK_FALSE(s.push(frame(2)));
    CHECK_FALSE(s.finish());
  }
  CHECK(calls <= 1);
  // Destroyed without finish(): the thread is joined, nothing is sent.
  std::atomic<int> later{0};
  {
    Shipper s(4, [&](const OutFrame&) -> Result<void> {
      later++;
      return {};
    });
  }
  CHECK(later == 0);
}
