#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "test_support.h"
#include "utsushi/common/atomic_file.h"

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

TEST_CASE("atomic_file: a process killed with SIGKILL never leaves the final name", "[atomic_file]") {
  test::TempDir dir;
  std::string out = dir.file("out.img");
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
  CHECK(WIFSIGNALED(status));
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
