#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "utsushi/livemig/endpoints.h"
#include "utsushi/livemig/handshake.h"
#include "utsushi/livemig/link.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace std::chrono;

namespace {
const std::string k_serve_token = "0123456789abcdef-serve-token";

// Connects to the server on `port` and authenticates with `token`.
Result<void> authenticate(std::uint16_t port, const std::string& token) {
  auto fd = UTSUSHI_TRY(net::tcp_connect({"127.0.0.1", std::to_string(port)}, seconds(5)));
  Link link(std::move(fd), {0, seconds(60)});
  return handshake_client(link, token, seconds(10));
}
}  // namespace

TEST_CASE("livemig::serve_sessions serves senders while a silent connection is open", "[livemig][serve]") {
  std::promise<std::uint16_t> listening;
  std::atomic<int> served{0};
  ServeOptions options{"127.0.0.1:0", k_serve_token, 2, seconds(30),
                       [&](std::uint16_t port) { listening.set_value(port); }};
  Result<void> served_result;
  std::thread server([&] { served_result = serve_sessions(options, [&](Link&) { ++served; }); });
  auto port = listening.get_future().get();

  // Port scans or stuck peers: connected, never say a word (fewer of them
  // than the handshakes that may run at once, 8).
  std::vector<Fd> silent;
  for (int i = 0; i < 3; ++i) {
    auto fd = net::tcp_connect({"127.0.0.1", std::to_string(port)}, seconds(5));
    REQUIRE(fd);
    silent.push_back(std::move(*fd));
  }
  auto t0 = steady_clock::now();
  // A peer with a wrong token is refused and does not count.
  CHECK_FALSE(authenticate(port, "another-token-of-16+bytes"));
  // The real senders are served beside the silent ones, not after their
  // handshake timeout.
  std::vector<std::thread> senders;
  std::atomic<int> ok{0};
  for (int i = 0; i < 2; ++i) {
    senders.emplace_back([&] { ok += authenticate(port, k_serve_token) ? 1 : 0; });
  }
  for (auto& t : senders) {
    t.join();
  }
  server.join();
  double took = duration<double>(steady_clock::now() - t0).count();
  CHECK(served_result);
  CHECK(ok == 2);
  CHECK(served == 2);
  CHECK(took < 5.0);  // the silent connections' handshake timeout is 15 s
}
