#pragma once
// run_ordered: the one producer/consumer pipeline of utsushi (image writers,
// p2v's network sender): a parallel map with in-order consumption. Worker
// threads call produce(i, r) for job indices 0..jobs-1 in any order (at most
// `window` jobs ahead of the consumer); the calling thread calls consume(i, r)
// strictly in index order. The first error stops everything and is returned
// once every worker has stopped.
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi {

template <class R>
[[nodiscard]] Result<void> run_ordered(std::size_t jobs, unsigned threads, std::size_t window,
                                       const std::function<Result<void>(std::size_t, R&)>& produce,
                                       const std::function<Result<void>(std::size_t, R&)>& consume) {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::size_t, R> ready;
  std::size_t next = 0, consumed = 0;
  bool stop = false;
  std::optional<Error> error;
  auto record = [&](Error e) {
    if (!error) {
      error = std::move(e);
    }
    stop = true;
    cv.notify_all();
  };
  auto worker = [&] {
    for (;;) {
      std::size_t i;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || next >= jobs || next < consumed + window; });
        if (stop || next >= jobs) {
          return;
        }
        i = next++;
      }
      R r{};
      auto res = produce(i, r);
      std::lock_guard lock(mu);
      if (!res) {
        record(std::move(res).error());
        return;
      }
      ready.emplace(i, std::move(r));
      cv.notify_all();
    }
  };
  {
    std::vector<std::jthread> pool;
    for (unsigned t = 0; t < std::max(1u, threads); ++t) {
      pool.emplace_back(worker);
    }
    for (std::size_t i = 0; i < jobs; ++i) {
      R r{};
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || ready.contains(i); });
        if (stop) {
          break;
        }
        r = std::move(ready.at(i));
        ready.erase(i);
      }
      auto res = consume(i, r);
      std::lock_guard lock(mu);
      if (!res) {
        record(std::move(res).error());
        break;
      }
      consumed = i + 1;
      cv.notify_all();
    }
    std::lock_guard lock(mu);
    stop = true;
    cv.notify_all();
  }
  if (error) {
    return std::unexpected(std::move(*error));
  }
  return {};
}

}  // namespace utsushi
