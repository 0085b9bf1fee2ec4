#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/syscall.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <fstream>
#include <optional>
#include <thread>

#include "test_support.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/fd.h"

using namespace utsushi;

TEST_CASE("fd: Fd closes on destruction and moves ownership", "[fd]") {
  int raw = ::open("/dev/null", O_RDONLY);
  REQUIRE(raw >= 0);
  {
    Fd a(raw);
    Fd b(std::move(a));
    CHECK_FALSE(a);
    CHECK(b.get() == raw);
  }
  CHECK(::fcntl(raw, F_GETFD) == -1);  // closed
  CHECK(errno == EBADF);
}

TEST_CASE("fd: open_fd names the path in its error", "[fd]") {
  auto r = open_fd("/nonexistent/utsushi", O_RDONLY);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::not_found);
  CHECK(r.error().message().find("/nonexistent/utsushi") != std::string::npos);
}

TEST_CASE("fd: open_input refuses FIFOs, sockets, character devices and directories at once", "[fd]") {
  test::TempDir dir;
  std::string fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // No writer: a plain blocking open would wait for ever; open_input answers at once.
  for (int flags : {O_RDONLY, O_RDWR}) {
    auto r = open_input(fifo, flags);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::invalid_argument);
    CHECK(r.error().message().find("a FIFO") != std::string::npos);
  }
  auto chr = open_input("/dev/null", O_RDONLY);
  REQUIRE_FALSE(chr);
  CHECK(chr.error().message().find("'/dev/null' is a character device") != std::string::npos);
  auto d = open_input(dir.path(), O_RDONLY);
  REQUIRE_FALSE(d);
  CHECK(d.error().message().find("a directory") != std::string::npos);
  // A regular file opens, blocking again (O_NONBLOCK cleared).
  std::string file = dir.file("f");
  test::make_sparse_file(file, 10);
  auto f = open_input(file, O_RDONLY);
  REQUIRE(f);
  CHECK((::fcntl(f->get(), F_GETFL) & O_NONBLOCK) == 0);
}

// Blocks in openat on a FIFO with no writer, signals that thread with SIGTERM
// and returns whether the open ended as cancelled. Runs in a child process:
// a cancellation request is for good (common/cancel.h).
static bool cancel_ends_blocked_open() {
  install_cancel_handlers();
  test::TempDir dir;
  std::string fifo = dir.file("fifo");
  if (::mkfifo(fifo.c_str(), 0600) != 0) return false;
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  std::optional<Result<Fd>> result;
  std::thread opener([&] {
    tid = static_cast<pid_t>(::syscall(SYS_gettid));
    result = open_fd(fifo, O_RDONLY);  // blocks: no writer
    done = true;
  });
  // Signal once the thread sits in openat, as seen by /proc.
  auto in_openat = [&] {
    std::ifstream f("/proc/self/task/" + std::to_string(tid.load()) + "/syscall");
    long nr = -1;
    return f >> nr && nr == SYS_openat;
  };
  for (int i = 0; i < 3000 && (tid == 0 || !in_openat()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  bool blocked = in_openat();
  if (blocked) ::syscall(SYS_tgkill, ::getpid(), tid.load(), SIGTERM);
  for (int i = 0; i < 3000 && !done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!done) {
    auto writer = open_fd(fifo, O_WRONLY | O_NONBLOCK);  // release the open so the test ends (and fails)
  }
  opener.join();
  return blocked && result.has_value() && !result->has_value() && result->error().code() == Errc::cancelled;
}

TEST_CASE("fd: a cancel signal ends an open that blocks", "[fd][cancel]") {
  CHECK(test::in_child_process(cancel_ends_blocked_open));
}

TEST_CASE("fd: pread_full reports a short file as out_of_range", "[fd]") {
  test::TempDir dir;
  std::string path = dir.file("f");
  test::make_sparse_file(path, 100);
  auto fd = open_fd(path, O_RDONLY);
  REQUIRE(fd);
  std::vector<std::uint8_t> buf(200);
  auto r = pread_full(fd->get(), buf, 0, path);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::out_of_range);
  auto some = pread_some(fd->get(), buf, 50, path);
  REQUIRE(some);
  CHECK(*some == 50);
}

TEST_CASE("fd: pwrite_full then pread_full round-trips", "[fd]") {
  test::TempDir dir;
  std::string path = dir.file("f");
  auto fd = open_fd(path, O_RDWR | O_CREAT);
  REQUIRE(fd);
  auto data = test::pattern(1 << 20, 7);
  REQUIRE(pwrite_full(fd->get(), data, 4096, path));
  std::vector<std::uint8_t> back(data.size());
  REQUIRE(pread_full(fd->get(), back, 4096, path));
  CHECK(back == data);
}

TEST_CASE("fd: an output that is the input, by any path, is refused", "[fd]") {
  test::TempDir dir;
  std::string in = dir.file("disk.raw");
  test::make_sparse_file(in, 4096);
  REQUIRE(::symlink(in.c_str(), dir.file("link.raw").c_str()) == 0);
  auto same = check_distinct_output(in, dir.file("link.raw"));
  REQUIRE_FALSE(same);
  CHECK(same.error().code() == Errc::invalid_argument);
  CHECK_FALSE(check_distinct_output(in, dir.path() + "/./disk.raw"));
  CHECK(check_distinct_output(in, dir.file("other.raw")));  // does not exist yet
  test::make_sparse_file(dir.file("other.raw"), 4096);
  CHECK(check_distinct_output(in, dir.file("other.raw")));  // a different file
}
