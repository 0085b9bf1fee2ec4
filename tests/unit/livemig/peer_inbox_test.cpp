#include <catch2/catch.hpp>

#include "session_fixtures.h"
#include "utsushi/livemig/frame.h"
#include "utsushi/livemig/peer_inbox.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace std::chrono;
using livemig::test::link_pair;

TEST_CASE("livemig progress payload: 8 bytes big-endian, any other length is corrupt", "[livemig][inbox]") {
  auto p = encode_progress(0x0102030405060708ull);
  CHECK(p == std::array<std::uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(parse_progress(p).value_or(0) == 0x0102030405060708ull);
  for (std::size_t n : {0, 7, 9}) {
    std::vector<std::uint8_t> bad(n, 1);
    auto r = parse_progress(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::corruption);
  }
}

TEST_CASE("livemig::PeerInbox: progress raises taken, other frames wait in order, an abort is seen",
          "[livemig][inbox]") {
  auto links = link_pair();
  PeerInbox inbox(*links.sender);
  Link& receiver = *links.receiver;
  CHECK(inbox.poll(milliseconds(0)));  // nothing yet
  CHECK(inbox.taken() == 0);
  REQUIRE(receiver.send(FrameType::progress, encode_progress(100)));
  REQUIRE(receiver.send_text(FrameType::ready, "{}"));
  REQUIRE(receiver.send(FrameType::progress, encode_progress(50)));  // never lowers it
  REQUIRE(receiver.send(FrameType::progress, encode_progress(300)));
  REQUIRE(inbox.poll(milliseconds(1000)));
  CHECK(inbox.taken() == 100);
  CHECK_FALSE(inbox.abort_reason());
  // next() returns the kept frame first, then skips progress for the next one.
  receiver.send_abort("disk full");
  auto first = inbox.next(milliseconds(1000));
  REQUIRE(first);
  CHECK(first->header.type == FrameType::ready);
  auto second = inbox.next(milliseconds(1000));
  REQUIRE(second);
  CHECK(second->header.type == FrameType::abort);
  CHECK(inbox.taken() == 300);
  // Nothing more: next() times out.
  auto none = inbox.next(milliseconds(50));
  REQUIRE_FALSE(none);
  CHECK(none.error().code() == Errc::unavailable);
  // An abort that poll() reads is kept and named.
  receiver.send_abort("no space left");
  REQUIRE(inbox.poll(milliseconds(1000)));
  CHECK(inbox.abort_reason().value_or("") == "no space left");
  // A malformed progress frame is corrupt.
  std::array<std::uint8_t, 3> short_payload{};
  REQUIRE(receiver.send(FrameType::progress, short_payload));
  auto bad = inbox.poll(milliseconds(1000));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Errc::corruption);
}

TEST_CASE("livemig::PeerInbox refuses a flood of frames nobody asked for", "[livemig][inbox]") {
  auto links = link_pair();
  PeerInbox inbox(*links.sender);
  for (std::size_t i = 0; i <= PeerInbox::k_max_kept; ++i) {
    REQUIRE(links.receiver->send_text(FrameType::result, "{}"));
  }
  for (std::size_t i = 0; i < PeerInbox::k_max_kept; ++i) {
    REQUIRE(inbox.poll(milliseconds(1000)));
  }
  auto r = inbox.poll(milliseconds(1000));
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::corruption);
  // What was kept still comes out, in order.
  auto first = inbox.next(milliseconds(100));
  REQUIRE(first);
  CHECK(first->header.type == FrameType::result);
}

TEST_CASE("livemig::PeerInbox::drain reads every frame already there and keeps the rest for next()",
          "[livemig][inbox]") {
  auto links = link_pair();
  PeerInbox inbox(*links.sender);
  Link& receiver = *links.receiver;
  REQUIRE(inbox.drain());  // nothing there: returns at once
  // 400 progress frames, ten times what this socket pair holds undrained
  // (its sends block after about 35), flow while drain() runs between them.
  for (std::uint64_t n = 1; n <= 400; ++n) {
    REQUIRE(receiver.send(FrameType::progress, encode_progress(n * 4096)));
    if (n % 20 == 0) {
      REQUIRE(inbox.drain());
      CHECK(inbox.taken() == n * 4096);
    }
  }
  REQUIRE(receiver.send_text(FrameType::ready, "{}"));
  REQUIRE(inbox.drain());
  auto kept = inbox.next(milliseconds(0));
  REQUIRE(kept);
  CHECK(kept->header.type == FrameType::ready);
}
