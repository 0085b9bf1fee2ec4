#include "utsushi/livemig/libvirt_host.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>
#include <vector>

using namespace utsushi;
using namespace utsushi::livemig;
using namespace std::chrono;

// libvirt's test driver runs in process: no daemon needed.
TEST_CASE("livemig::LibvirtHost opens and closes its event loop again and again", "[livemig][libvirt]") {
  auto t0 = steady_clock::now();
  // Hosts opened and closed from two threads at once: a loop that is
  // stopping and the next one must never run side by side, and stopping
  // one must not wait for its timer's tick each time.
  std::vector<std::thread> threads;
  std::vector<int> failures(2, 0);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&failures, t] {
      for (int i = 0; i < 25; ++i) {
        auto host = LibvirtHost::open("test:///default");
        if (!host) {
          ++failures[t];
          continue;
        }
        auto guests = (*host)->list_guests();
        if (!guests || guests->empty()) {
          ++failures[t];
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(failures == std::vector<int>{0, 0});
  CHECK(duration<double>(steady_clock::now() - t0).count() < 10.0);
}
