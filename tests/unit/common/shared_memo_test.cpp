// shared_memo.h: results remembered per key, one computation per key at a
// time, a waiter's retry.
#include "utsushi/common/shared_memo.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace utsushi;

TEST_CASE("SharedMemo remembers what keep() accepts, computes the rest again", "[common][memo]") {
  SharedMemo<std::string, int> memo;
  int computed = 0;
  auto seven = [&]() -> Result<int> { return ++computed, 7; };
  auto always = [](const Result<int>&) { return true; };
  auto never = [](const Result<int>&) { return false; };
  CHECK(memo.get("a", seven, always).value() == 7);
  CHECK(memo.get("a", seven, always).value() == 7);
  CHECK(computed == 1);
  CHECK(memo.get("b", seven, never).value() == 7);
  CHECK(memo.get("b", seven, never).value() == 7);
  CHECK(computed == 3);
  // Errors are never remembered.
  auto broken = [&]() -> Result<int> { return ++computed, fail(Errc::io_error, "no"); };
  CHECK_FALSE(memo.get("c", broken, always));
  CHECK_FALSE(memo.get("c", broken, always));
  CHECK(computed == 5);
}

TEST_CASE("SharedMemo: callers of a key being computed wait for that result", "[common][memo]") {
  SharedMemo<int, int> memo;
  std::atomic<int> computed{0};
  auto slow = [&]() -> Result<int> {
    ++computed;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return 42;
  };
  std::vector<int> got(6, 0);
  {
    std::vector<std::jthread> callers;
    for (std::size_t i = 0; i < got.size(); ++i) {
      callers.emplace_back([&, i] { got[i] = memo.get(1, slow, [](const Result<int>&) { return false; }).value(); });
    }
  }
  for (int g : got) CHECK(g == 42);
  // Not kept, so only callers that overlapped the first computation shared it: fewer computations than callers.
  CHECK(computed.load() < static_cast<int>(got.size()));
}

TEST_CASE("SharedMemo: a waiter whose retry() refuses the result computes it itself", "[common][memo]") {
  SharedMemo<int, int> memo;
  std::atomic<int> computed{0};
  auto first_fails = [&]() -> Result<int> {
    int n = ++computed;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (n == 1) {
      return fail(Errc::cancelled, "stopped");
    }
    return 5;
  };
  auto keep = [](const Result<int>&) { return true; };
  auto cancelled = [](const Result<int>& r) { return !r && r.error().code() == Errc::cancelled; };
  Result<int> a = 0, b = 0;
  {
    std::jthread ta([&] { a = memo.get(1, first_fails, keep); });
    while (computed.load() == 0) {  // ta's computation is under way before tb asks
      std::this_thread::yield();
    }
    std::jthread tb([&] { b = memo.get(1, first_fails, keep, cancelled); });
  }
  CHECK_FALSE(a);  // the first caller gets its own computation's error
  REQUIRE(b);
  CHECK(*b == 5);
  CHECK(computed.load() == 2);
}
