#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "utsushi/livemig/endpoints.h"
#include "utsushi/livemig/handshake.h"
#include "utsushi/livemig/link.h"
#include "session_fixtures.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace std::chrono;
using Catch::Matchers::Contains;

namespace {
const std::string k_serve_token = "0123456789abcdef-serve-token";

// Connects to the server on `port` and authenticates with `token`.
Result<ReceiverKind> authenticate(std::uint16_t port, const std::string& token) {
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

TEST_CASE("livemig: a sender and a receiver of different kinds both stop at once, naming the mismatch",
          "[livemig][serve]") {
  // Without the kind in the handshake a QMP sender waits for the receiver's
  // "mode" while a libvirt receiver waits for the sender's "domain_xml".
  struct Case {
    ReceiverKind receiver;
    ReceiverKind sender;
    const char* says;
    const char* instead;
  };
  for (const Case c : {Case{ReceiverKind::libvirt, ReceiverKind::qmp, "creates libvirt domains",
                            "send --libvirt URI --domain NAME"},
                       Case{ReceiverKind::qmp, ReceiverKind::libvirt, "feeds a QEMU started with -incoming defer",
                            "send --qmp SRC.sock"}}) {
    std::promise<std::uint16_t> listening;
    ServeOptions options{"127.0.0.1:0", k_serve_token, 1, seconds(30),
                         [&](std::uint16_t port) { listening.set_value(port); }, c.receiver};
    std::string receiver_saw;
    std::thread server([&] {
      (void)serve_sessions(options, [&](Link& link) {
        // How each kind of receiver starts: a QMP one announces its mode
        // first, a libvirt one waits for the domain definition.
        if (c.receiver == ReceiverKind::qmp) {
          (void)link.send_text(FrameType::mode, R"({"hold":false})");
        }
        auto f = link.recv(seconds(30));
        receiver_saw = !f                                    ? f.error().message()
                       : f->header.type == FrameType::abort ? "abort: " + f->text()
                                                            : "frame " + std::to_string(static_cast<int>(f->header.type));
      });
    });
    auto port = listening.get_future().get();
    auto t0 = steady_clock::now();
    auto fd = net::tcp_connect({"127.0.0.1", std::to_string(port)}, seconds(5));
    REQUIRE(fd);
    Link link(std::move(*fd), {0, seconds(60)});
    auto kind = handshake_client(link, k_serve_token, seconds(10));
    REQUIRE(kind);
    CHECK(*kind == c.receiver);
    std::string to = "127.0.0.1:" + std::to_string(port);
    auto r = expect_receiver(link, c.sender, *kind, to);
    server.join();
    double took = duration<double>(steady_clock::now() - t0).count();
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::invalid_argument);
    CHECK_THAT(r.error().message(), Contains("the receiver at " + to) && Contains(c.says) && Contains(c.instead));
    CHECK(receiver_saw == "abort: " + r.error().message());
    CHECK(took < 1.0);  // the receiver's own wait is 30 s
  }
}

TEST_CASE("livemig handshake: the sender learns the receiver's kind, a wrong token or another protocol is refused",
          "[livemig][handshake]") {
  auto run = [](ReceiverKind kind, const std::string& token, link::Protocol client_protocol) {
    auto lp = test::link_pair();
    Result<void> server_result;
    std::thread server([&] { server_result = handshake_server(*lp.receiver, k_serve_token, seconds(5), kind); });
    Result<ReceiverKind> client_result = fail(Errc::internal, "not run");
    if (client_protocol.name == k_protocol.name && client_protocol.version == k_protocol.version) {
      client_result = handshake_client(*lp.sender, token, seconds(5));
    } else {
      auto g = link::handshake_client(*lp.sender, client_protocol, token, seconds(5));
      client_result = g ? Result<ReceiverKind>(ReceiverKind::unknown) : std::unexpected(g.error());
    }
    server.join();
    return std::make_pair(client_result, server_result);
  };
  for (auto kind : {ReceiverKind::qmp, ReceiverKind::libvirt}) {
    auto [c, s] = run(kind, k_serve_token, k_protocol);
    REQUIRE(c);
    CHECK(*c == kind);
    CHECK(s);
  }
  auto [wc, ws] = run(ReceiverKind::qmp, "another-token-of-16+bytes", k_protocol);
  CHECK(wc.error().code() == Errc::permission_denied);
  CHECK(ws.error().code() == Errc::permission_denied);
  // p2v's client (protocol "p2v", p2v/wire_format.h) and an older livemig.
  for (link::Protocol other : {link::Protocol{"p2v", 2}, link::Protocol{"livemig", 2}, link::Protocol{"livemig", 9}}) {
    auto [pc, ps] = run(ReceiverKind::qmp, k_serve_token, other);
    REQUIRE_FALSE(pc);
    CHECK(pc.error().code() == Errc::not_supported);
    CHECK_THAT(pc.error().message(), Contains("livemig (protocol version 10)"));
    CHECK(ps.error().code() == Errc::not_supported);
  }
  auto lp = test::link_pair();
  CHECK(expect_receiver(*lp.sender, ReceiverKind::qmp, ReceiverKind::qmp, "127.0.0.1:1"));
  CHECK(expect_receiver(*lp.sender, ReceiverKind::libvirt, ReceiverKind::unknown, "127.0.0.1:1"));
  CHECK(lp.sender->frames_sent() == 0);
}
