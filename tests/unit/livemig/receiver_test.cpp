// run_receiver's failure paths (receiver.cpp), against a scripted destination
// monitor (fake_monitor.h): what the receiver reports and which frame the
// sender gets when the stream fails and the destination cannot be discarded
// for sure. The sender's side is played by hand here, so that the exact
// frame can be checked; sender_test.cpp runs the real sender.
#include <fmt/core.h>
#include <xxhash.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "session_fixtures.h"
#include "synthetic_stream.h"
#include "utsushi/common/endian.h"
#include "utsushi/livemig/page_codec.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace utsushi::livemig::test;
using namespace std::chrono;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

// The sender's side of one receiver, played by hand.
class HandSender {
 public:
  HandSender(ScriptedDestination& destination, const ReceiveOptions& options) : m_links(link_pair()) {
    m_thread = std::thread(
        [this, &destination, options] { m_outcome = run_receiver(options, destination.qmp, *m_links.receiver); });
  }
  ~HandSender() {
    if (m_thread.joinable()) {
      m_thread.join();
    }
  }
  HandSender(const HandSender&) = delete;
  HandSender& operator=(const HandSender&) = delete;

  Link& link() { return *m_links.sender; }
  // The receiver's next frame but `progress`, whose last value taken() keeps.
  Result<Frame> recv() {
    for (;;) {
      auto f = m_links.sender->recv(seconds(10));
      if (!f || f->header.type != FrameType::progress) {
        return f;
      }
      m_taken = UTSUSHI_TRY(parse_progress(f->payload));
    }
  }
  std::uint64_t taken() const { return m_taken; }
  // Reads the receiver's mode frame and returns its "hold".
  bool mode() {
    auto f = recv();
    REQUIRE(f);
    REQUIRE(f->header.type == FrameType::mode);
    return json::parse(f->text()).value("hold", false);
  }
  // A stream of no bytes: the END frame with the hash of nothing.
  void empty_stream() {
    json end = {{"bytes", 0}, {"hash", fmt::format("{:016x}", XXH3_64bits(nullptr, 0))}};
    REQUIRE(m_links.sender->send_text(FrameType::end, end.dump()));
  }
  // A held receiver, its (empty) stream loaded: up to its "ready".
  void to_ready() {
    CHECK(mode());
    empty_stream();
    auto ready = recv();
    REQUIRE(ready);
    REQUIRE(ready->header.type == FrameType::ready);
  }
  // The receiver's report, once it returned.
  const Outcome& outcome() {
    m_thread.join();
    return m_outcome;
  }

 private:
  LinkPair m_links;
  std::uint64_t m_taken = 0;
  Outcome m_outcome;
  std::thread m_thread;
};

// A DATA frame (uncompressed) whose batch is `stream` as one RAW token.
void send_raw_frame(Link& link, std::span<const std::uint8_t> stream) {
  Bytes batch{k_token_raw};
  put_varint(batch, stream.size());
  batch.insert(batch.end(), stream.begin(), stream.end());
  REQUIRE(link.send(FrameType::data, batch, 0, static_cast<std::uint32_t>(batch.size())));
}

// Waits up to 5 s for the destination to have read `n` bytes, then 100 ms
// more; returns how many it has read.
std::size_t settled_bytes(ScriptedDestination& dest, std::size_t n) {
  const auto deadline = steady_clock::now() + seconds(5);
  while (dest.received_so_far() < n && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  std::this_thread::sleep_for(milliseconds(100));
  return dest.received_so_far();
}

// A destination whose monitor stops answering once the stream is in (the
// receiver's first query-status), so that the receiver fails after feeding
// it all, and that then refuses to quit.
void unreadable_then_refuses_quit(FakeMonitor& d) {
  d.on("query-status", Reply::late());
  d.on("quit", Reply::qmp_error("quit refused"));
}

}  // namespace

TEST_CASE("livemig receiver: a broken stream and a refused quit: the sender is stopped, the destination may exist",
          "[livemig][receiver][fake]") {
  bool hold = GENERATE(false, true);
  ScriptedDestination dest({}, 5'000'000);
  dest.qmp.on("quit", Reply::qmp_error("quit refused"));
  HandSender peer(dest, test_receive_options(hold));
  CHECK(peer.mode() == hold);
  Bytes junk(64, 0xa5);  // not a zstd block
  REQUIRE(peer.link().send(FrameType::data, junk, k_frame_zstd, 4096));
  // The destination cannot have the whole stream: an abort, at once.
  auto answer = peer.recv();
  REQUIRE(answer);
  CHECK(answer->header.type == FrameType::abort);
  CHECK_THAT(answer->text(), Contains("zstd"));
  const Outcome& out = peer.outcome();
  REQUIRE(out.error);
  CHECK(out.error->code() == Errc::corruption);
  CHECK_THAT(out.report.error, Contains("zstd") && Contains("may still exist") && Contains("quit refused"));
  if (hold) {
    CHECK(out.report.status == ReportStatus::failed);
    CHECK(out.report.source_state == "paused");
    CHECK_THAT(out.report.error, Contains("must be removed by hand"));
  } else {
    CHECK(out.report.status == ReportStatus::unknown);
    CHECK(out.report.source_state == "unknown");
  }
  CHECK(dest.qmp.count("quit") == 1);
  CHECK(dest.qmp.unscripted().empty());
}

TEST_CASE("livemig receiver: a failed destination is discarded before its stream socket closes",
          "[livemig][receiver][fake]") {
  // A second guard (the pump keeps the tail with QEMU_VM_EOF for the last
  // batch, up to PageEncoder::k_tail_limit): should the destination have its
  // EOF, closing its stream would let it finish loading and start, so it is
  // quit while its stream is still open.
  ScriptedDestination dest({}, 5'000'000);
  bool open_at_quit = false;
  dest.qmp.on("quit", Reply::from([&](const json&, int) -> Result<json> {
                open_at_quit = dest.stream_open();
                dest.qmp.vanish();
                return json::object();
              }));
  HandSender peer(dest, test_receive_options());
  CHECK_FALSE(peer.mode());
  Bytes junk(64, 0xa5);
  REQUIRE(peer.link().send(FrameType::data, junk, k_frame_zstd, 4096));
  const Outcome& out = peer.outcome();
  CHECK(out.report.source_state == "discarded");
  CHECK(open_at_quit);
  CHECK_FALSE(dest.stream_open());  // and closed once run_receiver returned
}

TEST_CASE("livemig receiver: after the whole stream, only a destination that cannot run gets the sender an abort",
          "[livemig][receiver][fake]") {
  struct Case {
    const char* name;
    Reply quit;
    bool hold;
    const char* status;        // the receiver's report
    const char* source_state;  // (the destination's state)
    FrameType frame;           // what the sender gets
  };
  // A destination with the whole stream may run unless it is discarded for
  // sure (quit answered, or its monitor gone while quitting) or held (paused,
  // never told to go).
  auto c = GENERATE(values<Case>({
      {"quit refused", Reply::qmp_error("quit refused"), false, "unknown", "unknown", FrameType::result},
      {"quit late", Reply::late(), false, "unknown", "unknown", FrameType::result},
      {"quit meets a gone monitor", Reply::gone(), false, "failed", "discarded", FrameType::abort},
      {"quit answered", Reply::ok(), false, "failed", "discarded", FrameType::abort},
      {"held, quit refused", Reply::qmp_error("quit refused"), true, "failed", "paused", FrameType::abort},
  }));
  INFO(c.name);
  ScriptedDestination dest({}, 5'000'000);
  unreadable_then_refuses_quit(dest.qmp);
  dest.qmp.on("quit", c.quit);
  HandSender peer(dest, test_receive_options(c.hold));
  CHECK(peer.mode() == c.hold);
  peer.empty_stream();
  auto answer = peer.recv();
  REQUIRE(answer);
  CHECK(answer->header.type == c.frame);
  if (c.frame == FrameType::result) {
    json verdict = json::parse(answer->text());
    CHECK(verdict.value("status", "") == "unknown");
    CHECK_THAT(verdict.value("error", ""), Contains("may still exist"));
  }
  CHECK_FALSE(peer.recv());  // nothing after the verdict: the link is shut
  const Outcome& out = peer.outcome();
  CHECK(to_string(out.report.status) == c.status);
  CHECK(out.report.source_state == c.source_state);
  CHECK_THAT(out.report.error, Contains("destination QEMU after the stream"));
  if (c.hold) {
    CHECK_THAT(out.report.error, Contains("must be removed by hand"));
  }
  CHECK(dest.qmp.count("quit") == 1);
  CHECK(dest.qmp.unscripted().empty());
}

TEST_CASE(
    "livemig receiver: after 'go', a destination that did not start and whose monitor is gone at quit counts "
    "as discarded",
    "[livemig][receiver][fake]") {
  ScriptedDestination dest({}, 5'000'000);
  dest.qmp.once("cont", Reply::late());  // starting it: no answer in time
  dest.qmp.once("quit", Reply::gone());  // QEMU exits as it is told to quit
  HandSender peer(dest, test_receive_options(true));
  peer.to_ready();
  REQUIRE(peer.link().send_text(FrameType::go, json{{"start", true}}.dump()));
  auto answer = peer.recv();
  REQUIRE(answer);
  CHECK(answer->header.type == FrameType::running);
  json verdict = json::parse(answer->text());
  CHECK(verdict.value("status", "") == "discarded");
  CHECK(verdict.value("started", json(true)) == json(false));
  const Outcome& out = peer.outcome();
  CHECK(out.report.status == ReportStatus::failed);
  CHECK(out.report.source_state == "discarded");
  CHECK_THAT(out.report.error, Contains("it is 'paused'") && Contains("not started, discarded"));
  // After 'go': cont (late), its runstate, then quit.
  auto cmds = dest.qmp.commands();
  REQUIRE(cmds.size() >= 3);
  CHECK(std::vector<std::string>(cmds.end() - 3, cmds.end()) ==
        std::vector<std::string>{"cont", "query-status", "quit"});
  CHECK(dest.qmp.unscripted().empty());
}

TEST_CASE("livemig receiver: after 'go', a destination whose state cannot be read is 'unknown' and not quit",
          "[livemig][receiver][fake]") {
  ScriptedDestination dest({}, 5'000'000);
  dest.qmp.once("cont", Reply::late());
  HandSender peer(dest, test_receive_options(true));
  peer.to_ready();
  // From now on its monitor does not answer in time (QEMU may still run).
  dest.qmp.on("query-status", Reply::late());
  REQUIRE(peer.link().send_text(FrameType::go, json{{"start", true}}.dump()));
  auto answer = peer.recv();
  REQUIRE(answer);
  CHECK(answer->header.type == FrameType::running);
  CHECK(json::parse(answer->text()).value("status", "") == "unknown");
  const Outcome& out = peer.outcome();
  CHECK(out.report.status == ReportStatus::unknown);
  CHECK(out.report.source_state == "unknown");
  CHECK(dest.qmp.count("quit") == 0);  // it may run: never quit a destination that may run
}

TEST_CASE("livemig receiver: after 'go', a lost reply to cont from a destination that runs is success",
          "[livemig][receiver][fake]") {
  ScriptedDestination dest({}, 5'000'000);
  dest.qmp.once("cont", Reply::late());
  HandSender peer(dest, test_receive_options(true));
  peer.to_ready();
  // QEMU did start; only its answer was lost.
  dest.qmp.once("query-status", Reply::ok({{"status", "running"}, {"running", true}}));
  dest.qmp.emit("RESUME", 5'000'000);
  REQUIRE(peer.link().send_text(FrameType::go, json{{"start", true}}.dump()));
  auto answer = peer.recv();
  REQUIRE(answer);
  CHECK(answer->header.type == FrameType::running);
  CHECK(json::parse(answer->text()).value("status", "") == "ok");
  const Outcome& out = peer.outcome();
  CHECK(out.report.status == ReportStatus::ok);
  CHECK(out.report.source_state == "running");
  CHECK(dest.qmp.count("quit") == 0);
}

TEST_CASE("livemig receiver: a stream that cannot be fed to the destination stops the sender",
          "[livemig][receiver][fake]") {
  // The destination closes its stream socket at once (QEMU failed to load).
  auto stream = sample_stream();
  ScriptedSource source;
  ScriptedDestination dest(stream, 5'000'000, StreamEnd::drop);
  bool wrote = false;
  auto ends =
      migrate(source, dest, test_send_options(), test_receive_options(), whole_stream(stream, source, 1, wrote));
  CHECK(ends.receiver.report.status == ReportStatus::failed);
  CHECK_THAT(ends.receiver.report.error, Contains("feeding the destination QEMU"));
  CHECK(ends.receiver.report.source_state == "discarded");
  CHECK(ends.sender.report.status == ReportStatus::failed);
  CHECK_THAT(ends.sender.report.error, Contains("feeding the destination QEMU"));
  CHECK(ends.sender.report.source_state == "running");
  CHECK(source.qmp.count("quit") == 0);
}

TEST_CASE("livemig receiver: the real sender keeps its source paused unless the destination cannot run",
          "[livemig][receiver][sender][fake]") {
  struct Case {
    const char* name;
    bool hold;
    void (*script)(FakeMonitor& destination);
    const char* sender_status;
    const char* source_state;  // the sender's report
    int source_cont;           // how often the sender resumed its source
  };
  auto c = GENERATE(values<Case>({
      {"whole stream, state unreadable, quit refused: may run", false, unreadable_then_refuses_quit, "unknown",
       "postmigrate", 0},
      {"held, whole stream, state unreadable, quit refused: stays paused", true, unreadable_then_refuses_quit, "failed",
       "running", 1},
      {"after 'go', cont late, quit meets a gone monitor: discarded", true,
       [](FakeMonitor& d) {
         d.once("cont", Reply::late());
         d.once("quit", Reply::gone());
       },
       "failed", "running", 1},
  }));
  INFO(c.name);
  auto stream = sample_stream();
  ScriptedSource source;
  ScriptedDestination dest(stream, 5'000'000);
  c.script(dest.qmp);
  bool wrote = false;
  auto ends = migrate(source, dest, test_send_options(), test_receive_options(c.hold),
                      whole_stream(stream, source, 1'000'000, wrote));
  CHECK(wrote);
  CHECK(dest.received() == stream);
  INFO(ends.sender.report.error);
  CHECK(to_string(ends.sender.report.status) == c.sender_status);
  CHECK(ends.sender.report.source_state == c.source_state);
  CHECK(source.qmp.count("cont") == c.source_cont);
  CHECK(source.qmp.count("quit") == 0);
  CHECK(ends.receiver.report.status != ReportStatus::ok);
}

// QEMU 7.2 finishes loading once it has read QEMU_VM_EOF, whatever follows
// (it does not check its read of the vmdesc after it, ~100 KB on a pc
// machine): so no byte of a batch may reach it before the next frame, and
// the last batch none before END matched.
TEST_CASE("livemig receiver: a batch reaches the destination once the next frame verified, the last after END matched",
          "[livemig][receiver][fake]") {
  std::vector<std::uint8_t> stream(40000);
  for (std::size_t i = 0; i < stream.size(); ++i) {
    stream[i] = static_cast<std::uint8_t>(i * 7 + i / 251);
  }
  // END: matching; with another hash; with fields of other types (an error, not an exception).
  const int end_kind = GENERATE(0, 1, 2);
  const bool end_matches = end_kind == 0;
  INFO("END kind: " << end_kind);
  ScriptedDestination dest(stream, 5'000'000);
  HandSender peer(dest, test_receive_options());
  CHECK_FALSE(peer.mode());
  const std::span<const std::uint8_t> all(stream);
  send_raw_frame(peer.link(), all.first(10000));
  std::this_thread::sleep_for(milliseconds(200));  // (well within the receiver's idle timeout)
  CHECK(dest.received_so_far() == 0);
  send_raw_frame(peer.link(), all.subspan(10000));
  CHECK(settled_bytes(dest, 10000) == 10000);
  const std::uint64_t hash = XXH3_64bits(stream.data(), stream.size()) + (end_kind == 1 ? 1 : 0);
  json end = {{"bytes", stream.size()}, {"hash", fmt::format("{:016x}", hash)}};
  if (end_kind == 2) {
    end = {{"bytes", std::to_string(stream.size())}, {"hash", hash}};
  }
  REQUIRE(peer.link().send_text(FrameType::end, end.dump()));
  const Outcome& out = peer.outcome();
  if (end_matches) {
    CHECK(out.report.status == ReportStatus::ok);
    CHECK(dest.received() == stream);
  } else {
    CHECK(out.report.status == ReportStatus::failed);
    CHECK_THAT(out.report.error, Contains("rebuilt stream differs"));
    CHECK(dest.received().size() == 10000);
  }
}
