// The resume journal: what a run recorded is found by the same restore and
// discarded by any other.
#include <catch2/catch.hpp>

#include <filesystem>

#include "test_support.h"
#include "utsushi/v2p/journal.h"

using namespace utsushi;
using namespace utsushi::v2p;

TEST_CASE("v2p::Journal resumes the same restore only", "[v2p][journal]") {
  utsushi::test::TempDir dir;
  const std::string state = dir.file("state");
  {
    auto j = Journal::open(state, "file:/dev/x:1:2", "key-1");
    REQUIRE(j);
    CHECK_FALSE(j->resumed());
    REQUIRE(j->mark_window(3));
    REQUIRE(j->mark_window(7));
    REQUIRE(j->mark_step("staged-p2"));
    utsushi::test::make_sparse_file(j->work_path("p2.stage"), 4096);
    REQUIRE(j->mark_step("data"));
  }
  std::string work;
  {
    auto j = Journal::open(state, "file:/dev/x:1:2", "key-1");
    REQUIRE(j);
    CHECK(j->resumed());
    CHECK(j->window_done(3));
    CHECK(j->window_done(7));
    CHECK_FALSE(j->window_done(4));
    CHECK(j->step_done("data"));
    CHECK_FALSE(j->step_done("filesystems"));
    work = j->work_path("p2.stage");
    CHECK(std::filesystem::exists(work));
  }
  {
    // Another target: its own journal.
    auto other = Journal::open(state, "file:/dev/y:1:3", "key-1");
    REQUIRE(other);
    CHECK_FALSE(other->resumed());
  }
  {
    // Another image or layout on the same target: everything discarded.
    auto j = Journal::open(state, "file:/dev/x:1:2", "key-2");
    REQUIRE(j);
    CHECK_FALSE(j->resumed());
    CHECK_FALSE(j->window_done(3));
    CHECK_FALSE(std::filesystem::exists(work));
    REQUIRE(j->mark_window(1));
    REQUIRE(j->finish());
    CHECK_FALSE(std::filesystem::exists(j->path()));
  }
  CHECK(digest("a") != digest("b"));
  CHECK(digest("a").size() == 16);
}
