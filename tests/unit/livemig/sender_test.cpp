// run_sender (sender.cpp, pump.cpp) against a scripted source monitor
// (fake_monitor.h), with the real receiver and a scripted destination on the
// other end of a real Link: the downtime measurement and the error paths that
// give the source back its guest.
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "session_fixtures.h"
#include "synthetic_stream.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace utsushi::livemig::test;
using namespace std::chrono;
using Catch::Matchers::Contains;

namespace {

// Waits up to `timeout` for the other end of a stream socket to be shut
// (the sender never writes to QEMU's stream socket: EOF means shut).
bool wait_shut(int fd, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  while (steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char c;
      ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        return true;
      }
    }
  }
  return false;
}

// Once `migrate` has been answered, QEMU writes the first half of `stream`,
// then `then()` happens (while the sender's pump waits for more); QEMU writes
// nothing more and `shut` tells whether the sender shut QEMU's stream socket
// afterwards (QEMU's writer then fails at once instead of blocking).
StreamWriter half_then(ScriptedSource& source, const std::vector<std::uint8_t>& stream, std::function<void()> then,
                       bool& shut) {
  return [&source, &stream, after = std::move(then), &shut](Fd fd, const std::atomic<bool>&) {
    if (!source.qmp.wait_answered("migrate", seconds(10))) {
      return;
    }
    send_all(fd.get(), std::span(stream).first(stream.size() / 2));
    after();
    shut = wait_shut(fd.get(), seconds(10));
  };
}

constexpr std::int64_t k_old_stop_us = 1'000'000;  // a STOP before this migration
constexpr std::int64_t k_stop_us = 10'000'000;     // the STOP the migration causes
constexpr std::int64_t k_resume_us = 10'250'000;   // the destination's RESUME

// Both QEMUs of one migration of the sample stream.
struct Qemus {
  std::vector<std::uint8_t> stream = sample_stream();
  ScriptedSource source;
  ScriptedDestination dest{stream, k_resume_us};
};

}  // namespace

TEST_CASE_METHOD(Qemus,
                 "livemig sender: the downtime runs from the STOP this migration caused, never from an earlier one",
                 "[livemig][sender][fake]") {
  // 0: the migration's STOP is there when the verdict comes (QMP); 5: it
  // arrives only after a few polls (libvirt delivers events on its own
  // thread); -1: it never arrives, and the downtime is not measured.
  int late_polls = GENERATE(0, 5, -1);
  INFO("STOP arrives after " << late_polls << " polls");
  // The guest was paused once before, and resumed.
  source.qmp.emit("STOP", k_old_stop_us);
  source.qmp.emit("RESUME", k_old_stop_us + 500'000);
  bool wrote = false;
  std::optional<std::int64_t> stop_us;
  if (late_polls >= 0) {
    stop_us = k_stop_us;
  }
  auto ends = migrate(source, dest, test_send_options(), test_receive_options(),
                      whole_stream(stream, source, stop_us, wrote, late_polls));
  CHECK(wrote);
  const Report& rep = ends.sender.report;
  INFO(rep.error);
  REQUIRE(rep.status == "ok");
  CHECK(ends.receiver.report.status == "ok");
  CHECK(dest.received() == stream);
  CHECK(rep.stream_hash == rep.dest_stream_hash);
  CHECK(rep.downtime_ms == (stop_us ? (k_resume_us - k_stop_us) / 1000 : -1));
  CHECK(rep.source_state == "quit");
  CHECK(source.qmp.unscripted().empty());
}

TEST_CASE_METHOD(Qemus,
                 "livemig sender: the receiver's abort while the pump runs is the reason given, and the source runs on",
                 "[livemig][sender][fake]") {
  dest.qmp.on("migrate-incoming", Reply::qmp_error("cannot listen"));
  auto ends = migrate(
      source, dest, test_send_options(), test_receive_options(), [&](Fd fd, const std::atomic<bool>& receiver_done) {
        // QEMU starts sending only once the receiver gave up,
        // and then sends all (the pump's next frame fails).
        for (auto until = steady_clock::now() + seconds(10); !receiver_done && steady_clock::now() < until;) {
          std::this_thread::sleep_for(milliseconds(5));
        }
        send_all(fd.get(), stream);
      });
  CHECK_THAT(ends.receiver.report.error, Contains("cannot listen"));
  const Report& rep = ends.sender.report;
  CHECK(rep.status == "failed");
  CHECK_THAT(rep.error, Contains("the receiver stopped the migration") && Contains("cannot listen"));
  CHECK(ends.sender.error->code() == Errc::aborted);
  CHECK(rep.source_state == "running");
  CHECK(source.qmp.count("migrate_cancel") == 1);
  CHECK(source.qmp.count("quit") == 0);
  CHECK(source.qmp.unscripted().empty());
}

TEST_CASE_METHOD(Qemus, "livemig sender: QEMU's failed migration stops the pump, the receiver and nothing else",
                 "[livemig][sender][fake]") {
  bool shut = false;
  auto ends = migrate(source, dest, test_send_options(), test_receive_options(),
                      half_then(
                          source, stream, [&] { source.fail_migration("Unable to write to socket"); }, shut));
  const Report& rep = ends.sender.report;
  CHECK(rep.status == "failed");
  CHECK_THAT(rep.error, Contains("QEMU migration failed: Unable to write to socket"));
  CHECK(rep.source_state == "running");
  CHECK(source.qmp.count("migrate_cancel") == 0);  // nothing left to cancel
  CHECK(shut);
  // The receiver was told, and discarded its destination.
  CHECK_THAT(ends.receiver.report.error, Contains("the sender aborted") && Contains("Unable to write to socket"));
  CHECK(ends.receiver.report.source_state == "discarded");
  CHECK(dest.qmp.count("quit") == 1);
}

TEST_CASE_METHOD(Qemus, "livemig sender: the time limit cancels the migration and resumes nothing that still runs",
                 "[livemig][sender][fake]") {
  auto options = test_send_options();
  options.policy.time_limit = milliseconds(300);
  bool shut = false;
  auto ends = migrate(source, dest, options, test_receive_options(),
                      half_then(
                          source, stream, [] {}, shut));
  const Report& rep = ends.sender.report;
  CHECK(rep.status == "timeout");
  CHECK_THAT(rep.error, Contains("time limit"));
  CHECK(rep.source_state == "running");
  CHECK(source.qmp.count("migrate_cancel") == 1);
  CHECK(source.qmp.count("cont") == 0);  // the guest never stopped
  CHECK(shut);
  CHECK(ends.receiver.report.source_state == "discarded");
}

TEST_CASE_METHOD(Qemus, "livemig sender: a source monitor that is gone mid-migration leaves its state unknown",
                 "[livemig][sender][fake]") {
  bool shut = false;
  auto ends = migrate(source, dest, test_send_options(), test_receive_options(),
                      half_then(
                          source, stream, [&] { source.qmp.vanish(); }, shut));
  const Report& rep = ends.sender.report;
  CHECK(rep.status == "failed");
  CHECK_THAT(rep.error, Contains("connection closed"));
  CHECK(rep.source_state == "unknown");
  CHECK(shut);
  CHECK_THAT(ends.receiver.report.error, Contains("the sender aborted"));
  CHECK(ends.receiver.report.source_state == "discarded");
}

TEST_CASE_METHOD(Qemus, "livemig sender: a refused migrate closes the passed descriptor and stops the receiver",
                 "[livemig][sender][fake]") {
  source.qmp.on("migrate", Reply::qmp_error("There's a migration process in progress"));
  auto ends = migrate(source, dest, test_send_options(), test_receive_options(), [](Fd, const std::atomic<bool>&) {});
  const Report& rep = ends.sender.report;
  CHECK(rep.status == "failed");
  CHECK_THAT(rep.error, Contains("migration process in progress"));
  auto cmds = source.qmp.commands();
  REQUIRE(cmds.size() >= 2);
  CHECK(std::vector<std::string>(cmds.end() - 2, cmds.end()) == std::vector<std::string>{"migrate", "closefd"});
  CHECK_THAT(ends.receiver.report.error, Contains("the sender aborted") && Contains("migration process in progress"));
  CHECK(ends.receiver.report.source_state == "discarded");
}

TEST_CASE("livemig sender: a stream layout it does not know (QEMU_VM_COMMAND, the return path) is refused and "
          "the source keeps its guest",
          "[livemig][sender][fake]") {
  // What a source QEMU whose return-path capability could not be turned off
  // writes: a command record right after the header.
  std::vector<std::uint8_t> foreign = return_path_stream();
  std::vector<std::uint8_t> stream = sample_stream();
  ScriptedSource source;
  ScriptedDestination dest{stream, k_resume_us};
  auto ends = migrate(source, dest, test_send_options(), test_receive_options(),
                      [&source, &foreign](Fd fd, const std::atomic<bool>&) {
                        if (source.qmp.wait_answered("migrate", seconds(10))) {
                          send_all(fd.get(), foreign);
                          (void)wait_shut(fd.get(), seconds(10));
                        }
                      });
  const Report& rep = ends.sender.report;
  CHECK(rep.status == "refused");
  CHECK_THAT(rep.error, Contains("QEMU_VM_COMMAND"));
  CHECK(rep.source_state != "paused");
  CHECK(ends.receiver.report.source_state == "discarded");
}

TEST_CASE("livemig: the destination gets QEMU_VM_EOF only after the stream verified, however QEMU paces the tail",
          "[livemig][fake][sender]") {
  // The receiver feeds its last batch only after the sender's END matched; the pump keeps the
  // whole tail after RAM END (device state, EOF, vmdesc) for that batch. Here QEMU pauses twice
  // inside the tail (the pump would flush on each pause) and then reports the migration failed.
  auto stream = sample_stream();
  std::size_t vmdesc_len = 1 + 4 + 34;  // QEMU_VM_VMDESCRIPTION, length, the sample's JSON
  std::size_t eof_at = stream.size() - vmdesc_len - 1;
  REQUIRE(stream[eof_at] == 0x00);      // QEMU_VM_EOF
  REQUIRE(stream[eof_at + 1] == 0x06);  // QEMU_VM_VMDESCRIPTION
  ScriptedSource source;
  ScriptedDestination dest(stream, 1);
  auto ends = migrate(source, dest, test_send_options(), test_receive_options(),
                      [&](Fd fd, const std::atomic<bool>&) {
                        source.qmp.wait_answered("migrate", seconds(10));
                        std::size_t cut = eof_at + 3;
                        send_all(fd.get(), std::span(stream).first(cut));
                        std::this_thread::sleep_for(milliseconds(300));
                        send_all(fd.get(), std::span(stream).subspan(cut, 3));
                        std::this_thread::sleep_for(milliseconds(300));
                        source.fail_migration("QEMU gave up");
                        pollfd p{fd.get(), POLLIN, 0};
                        ::poll(&p, 1, 5000);
                      });
  CHECK(ends.sender.report.status == "failed");
  CHECK(ends.sender.report.source_state == "running");
  CHECK(ends.receiver.report.status == "failed");
  CHECK(dest.received().size() < eof_at);
}
