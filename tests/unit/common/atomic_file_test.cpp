#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "test_support.h"
#include "utsushi/common/atomic_file.h"
#include "utsushi/common/fd.h"

using namespace utsushi;
namespace fs = std::filesystem;

TEST_CASE("atomic_file: nothing appears under the final name until commit", "[atomic_file]") {
  test::TempDir dir;
  std::string out = dir.file("out.img");
  {
    auto f = AtomicFile::create(out);
    REQUIRE(f);
    REQUIRE(::write(f->fd(), "abc", 3) == 3);
    CHECK(fs::exists(f->temp_path()));
    CHECK_FALSE(fs::exists(out));
  }  // destroyed without commit
  CHECK_FALSE(fs::exists(out));
  CHECK(fs::is_empty(dir.path()));  // the temporary was removed too
}

TEST_CASE("atomic_file: commit renames and replaces an existing file", "[atomic_file]") {
  test::TempDir dir;
  std::string out = dir.file("out.img");
  test::make_sparse_file(out, 10);
  auto f = AtomicFile::create(out);
  REQUIRE(f);
  REQUIRE(::write(f->fd(), "abc", 3) == 3);
  REQUIRE(f->commit());
  CHECK(fs::file_size(out) == 3);
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
  CHECK_FALSE(f->commit());  // a second commit is a bug, reported
}

namespace {

std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".utsushi-") != std::string::npos) {
      out.push_back(e.path().string());
    }
  }
  return out;
}

// Forks a child that creates an AtomicFile for `out`, writes to it, and is
// killed with SIGKILL; returns the child's PID (reaped).
pid_t killed_writer(const std::string& out) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto f = AtomicFile::create(out);
    if (f) {
      (void)!::write(f->fd(), "partial", 7);
    }
    ::raise(SIGKILL);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  return pid;
}

}  // namespace

TEST_CASE("atomic_file: a process killed with SIGKILL never leaves the final name", "[atomic_file]") {
  test::TempDir dir;
  std::string out = dir.file("out.img");
  killed_writer(out);
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("atomic_file: a missing directory is a clear error", "[atomic_file]") {
  auto f = AtomicFile::create("/nonexistent-dir/out.img");
  REQUIRE_FALSE(f);
  CHECK(f.error().message().find("/nonexistent-dir/out.img") != std::string::npos);
}

TEST_CASE("atomic_file: commit_rename moves a finished file and keeps it on failure", "[atomic_file]") {
  test::TempDir dir;
  fs::create_directory(dir.file("partial"));
  std::string from = dir.file("partial/data.raw"), to = dir.file("disk.raw");
  test::make_sparse_file(from, 4096);
  test::write_at(from, 0, test::pattern(4096, 5));
  REQUIRE(commit_rename(from, to));
  CHECK_FALSE(fs::exists(from));
  CHECK(test::read_at(to, 0, 4096) == test::pattern(4096, 5));
  test::make_sparse_file(from, 512);
  auto bad = commit_rename(from, dir.file("missing-dir/disk.raw"));
  REQUIRE_FALSE(bad);
  CHECK(fs::exists(from));  // left for a retry
  CHECK(bad.error().message().find("missing-dir") != std::string::npos);
  CHECK_FALSE(commit_rename(dir.file("absent"), to));
}

TEST_CASE("atomic_file: a killed writer's temporary is removed by the next create, a live one is kept", "[atomic_file]") {
  test::TempDir dir;
  killed_writer(dir.file("a.img"));
  auto stale = temporaries(dir.path());
  REQUIRE(stale.size() == 1);  // kill -9 leaves it...

  auto live = AtomicFile::create(dir.file("b.img"));  // ...and the next create in the directory removes it
  REQUIRE(live);
  CHECK_FALSE(fs::exists(stale[0]));
  CHECK(temporaries(dir.path()) == std::vector<std::string>{live->temp_path()});

  // A live writer's temporary (locked, its process alive) survives any sweep.
  auto removed = remove_stale_temporaries(dir.path());
  REQUIRE(removed);
  CHECK(*removed == 0);
  CHECK(fs::exists(live->temp_path()));

  // Unlocked but with a live PID (a writer between creating and locking): kept.
  std::string ours = dir.file(".c.img.utsushi-" + std::to_string(::getpid()) + "-999.tmp");
  test::make_sparse_file(ours, 10);
  CHECK(*remove_stale_temporaries(dir.path()) == 0);
  CHECK(fs::exists(ours));
  // Locked by someone else, PID gone (a reused temporary name): kept while locked.
  std::string held = dir.file(".d.img.utsushi-" + std::to_string(killed_writer(dir.file("d.img"))) + "-0.tmp");
  for (const std::string& t : temporaries(dir.path())) {
    if (t != live->temp_path() && t != ours) {
      fs::rename(t, held);
    }
  }
  {
    Fd lock = *open_fd(held, O_RDONLY);
    REQUIRE(::flock(lock.get(), LOCK_EX) == 0);
    CHECK(*remove_stale_temporaries(dir.path()) == 0);
    CHECK(fs::exists(held));
  }
  CHECK(*remove_stale_temporaries(dir.path()) == 1);
  CHECK_FALSE(fs::exists(held));
  // Names that only look alike are never touched.
  // (PID 999999999 is beyond any pid_max: never alive.)
  for (const char* name : {"x.utsushi-999999999-1.tmp", ".x.utsushi-999999999.tmp", ".x.utsushi-a-1.tmp",
                           ".x.utsushi-999999999-1.tmpx", ".utsushi-999999999-1.tmp"}) {
    test::make_sparse_file(dir.file(name), 1);
  }
  CHECK(*remove_stale_temporaries(dir.path()) == 0);
  test::make_sparse_file(dir.file(".x.utsushi-999999999-1.tmp"), 1);
  CHECK(*remove_stale_temporaries(dir.path()) == 1);
  REQUIRE(live->commit());
}

TEST_CASE("atomic_file: two outputs of one name in one process get distinct temporaries", "[atomic_file]") {
  test::TempDir dir;
  auto a = AtomicFile::create(dir.file("o.img"));
  auto b = AtomicFile::create(dir.file("o.img"));
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->temp_path() != b->temp_path());
}
