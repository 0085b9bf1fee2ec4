#include <catch2/catch.hpp>

#include "utsushi/common/process.h"

using namespace utsushi;
using namespace std::chrono_literals;

TEST_CASE("process: output and exit code are captured", "[process]") {
  auto r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
  REQUIRE(r);
  CHECK(r->exit_code == 3);
  CHECK_FALSE(r->ok());
  CHECK(r->output.find("out") != std::string::npos);
  CHECK(r->output.find("err") != std::string::npos);
}

TEST_CASE("process: a timeout kills the whole process group", "[process]") {
  ProcessOptions o;
  o.timeout = 300ms;
  auto start = std::chrono::steady_clock::now();
  auto r = run_process({"sh", "-c", "sleep 30 & sleep 30"}, o);
  REQUIRE(r);
  CHECK(r->timed_out);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("process: a marker ends the child early", "[process]") {
  ProcessOptions o;
  o.stop_marker = "READY";
  auto r = run_process({"sh", "-c", "echo READY; sleep 30"}, o);
  REQUIRE(r);
  CHECK(r->marker_seen);
  CHECK_FALSE(r->timed_out);
}

TEST_CASE("process: a missing program exits 127 with a message", "[process]") {
  auto r = run_process({"utsushi-no-such-program"});
  REQUIRE(r);
  CHECK(r->exit_code == 127);
  CHECK(r->output.find("utsushi-no-such-program") != std::string::npos);
  CHECK_FALSE(program_exists("utsushi-no-such-program"));
  CHECK(program_exists("sh"));
}
