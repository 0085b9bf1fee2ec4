// The one link layer (common/link): frames, Link, handshake, accept loop.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <thread>

#include "utsushi/common/link/handshake.h"
#include "utsushi/common/link/json_message.h"
#include "utsushi/common/link/link.h"
#include "utsushi/common/link/server.h"

using namespace utsushi;
using namespace utsushi::link;
using namespace std::chrono;

namespace {

enum class Msg : std::uint8_t { data = 1, end = 2, go = 3, mode = 4 };

struct LinkPair {
  std::unique_ptr<Link> a;
  std::unique_ptr<Link> b;
};

LinkPair link_pair(std::uint64_t rate = 0, bool authenticated = true) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  LinkPair p{std::make_unique<Link>(Fd(sv[0]), LinkOptions{rate, seconds(5)}),
             std::make_unique<Link>(Fd(sv[1]), LinkOptions{0, seconds(5)})};
  if (authenticated) {
    p.a->set_authenticated();
    p.b->set_authenticated();
  }
  return p;
}

const std::string k_token = "0123456789abcdef-test-token";
constexpr Protocol k_proto{"unit-test", 3};

std::span<const std::uint8_t, k_frame_header> header_of(const Bytes& h) {
  return std::span<const std::uint8_t, k_frame_header>(h.data(), k_frame_header);
}

// Writes raw bytes into a link's socket, as a hostile peer would.
void raw_send(int fd, const Bytes& b) {
  REQUIRE(::send(fd, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size()));
}

// A value of this process's /proc/self/status ("Threads", "VmRSS" in kB).
long proc_status(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      return std::stol(line.substr(key.size() + 1));
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("link frame header: round trip, every corrupted byte refused, limits", "[link][frame]") {
  Bytes payload{1, 2, 3, 4, 5};
  Bytes h;
  encode_frame_header(h, 7, k_flag_compressed, 9, payload, 99);
  REQUIRE(h.size() == k_frame_header);
  auto d = decode_frame_header(header_of(h), k_max_frame_payload);
  REQUIRE(d);
  CHECK(d->type.value == 7);
  CHECK(d->flags == k_flag_compressed);
  CHECK(d->seq == 9);
  CHECK(d->payload_len == 5);
  CHECK(d->raw_len == 99);
  CHECK(check_frame_payload(*d, payload));
  Bytes bad = payload;
  bad[2] ^= 1;
  CHECK(check_frame_payload(*d, bad).error().code() == Errc::corruption);
  for (std::size_t i = 0; i < k_frame_header; ++i) {
    Bytes c = h;
    c[i] ^= 0x04;
    CHECK_FALSE(decode_frame_header(header_of(c), k_max_frame_payload));
  }
  // The receiver's limit, type 0 and unknown flags (with a valid header hash).
  CHECK(decode_frame_header(header_of(h), 4).error().code() == Errc::corruption);
  Bytes t0, flags;
  encode_frame_header(t0, 0, 0, 0, {}, 0);
  encode_frame_header(flags, 1, 0x0002, 0, {}, 0);
  CHECK(decode_frame_header(header_of(t0), 100).error().code() == Errc::corruption);
  CHECK(decode_frame_header(header_of(flags), 100).error().code() == Errc::corruption);
}

TEST_CASE("link::Link delivers frames in order and refuses corrupt or replayed ones", "[link]") {
  auto lp = link_pair();
  Bytes p(30000, 7);
  REQUIRE(lp.a->send(Msg::data, p));
  REQUIRE(lp.a->send(Msg::end, Bytes{}));
  auto f1 = lp.b->recv(seconds(2));
  REQUIRE(f1);
  CHECK(f1->payload == p);
  auto f2 = lp.b->recv(seconds(2));
  REQUIRE(f2);
  CHECK(f2->header.type == Msg::end);
  SECTION("a flipped payload byte") {
    Bytes h, q{1, 2, 3};
    encode_frame_header(h, 1, 0, 2, q, 3);
    q[1] ^= 0x40;
    put_bytes(h, q);
    raw_send(lp.a->fd(), h);
    CHECK(lp.b->recv(seconds(2)).error().code() == Errc::corruption);
  }
  SECTION("a flipped payload byte, delivered as damaged when asked for: the link stays in step") {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    LinkOptions lo;
    lo.deliver_damaged = true;
    Link a(Fd(sv[0]), {}), b(Fd(sv[1]), lo);
    a.set_authenticated();
    b.set_authenticated();
    Bytes h, q{1, 2, 3};
    encode_frame_header(h, 1, 0, 0, q, 3);
    q[1] ^= 0x40;
    put_bytes(h, q);
    raw_send(sv[0], h);
    auto d = b.recv(seconds(2));
    REQUIRE(d);
    CHECK(d->damaged);
    // The next frame (sequence 1) is read whole.
    Bytes h2, q2{4, 5};
    encode_frame_header(h2, 2, 0, 1, q2, 2);
    put_bytes(h2, q2);
    raw_send(a.fd(), h2);
    auto e = b.recv(seconds(2));
    REQUIRE(e);
    CHECK_FALSE(e->damaged);
    CHECK(e->payload == q2);
  }
  SECTION("a sequence number out of order") {
    Bytes h, q{9};
    encode_frame_header(h, 1, 0, 5, q, 1);
    put_bytes(h, q);
    raw_send(lp.a->fd(), h);
    CHECK(lp.b->recv(seconds(2)).error().code() == Errc::corruption);
  }
}

TEST_CASE("link::Link: before authentication a frame is at most 1 KiB", "[link]") {
  auto lp = link_pair(0, false);
  Bytes big(k_handshake_max_payload + 1, 1);
  REQUIRE(lp.a->send(Msg::data, big));
  auto f = lp.b->recv(seconds(2));
  REQUIRE_FALSE(f);
  CHECK(f.error().code() == Errc::corruption);
}

TEST_CASE("link::Link caps its rate", "[link]") {
  auto lp = link_pair(4 << 20);  // 4 MiB/s
  std::thread reader([&lp] {
    for (int i = 0; i < 4; ++i) {
      REQUIRE(lp.b->recv(seconds(5)));
    }
  });
  auto t0 = steady_clock::now();
  Bytes p(512 * 1024, 1);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(lp.a->send(Msg::data, p));
  }
  double s = duration<double>(steady_clock::now() - t0).count();
  reader.join();
  CHECK(s > 0.4);  // 2 MiB at 4 MiB/s, minus one burst chunk
  CHECK(s < 1.5);
}

TEST_CASE("link::Link over TCP: no Nagle, empty and multi-chunk payloads whole", "[link]") {
  // Plain sockets (net.h's already come with TCP_NODELAY): the Link itself must switch Nagle off.
  Fd lsock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(lsock);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof addr;
  REQUIRE(::bind(lsock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(lsock.get(), 1) == 0);
  REQUIRE(::getsockname(lsock.get(), reinterpret_cast<sockaddr*>(&addr), &alen) == 0);
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  Fd server(::accept4(lsock.get(), nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(server);
  auto nodelay = [](int fd) {
    int v = 0;
    socklen_t len = sizeof v;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0);
    return v;
  };
  REQUIRE(nodelay(client.get()) == 0);
  int client_fd = client.get();
  int server_fd = server.get();
  Link a(std::move(client), {0, seconds(5)});
  Link b(std::move(server), {0, seconds(5)});
  a.set_authenticated();
  b.set_authenticated();
  CHECK(nodelay(client_fd) == 1);
  CHECK(nodelay(server_fd) == 1);
  Bytes big(200 * 1024 + 7);  // several pacing chunks, the last one short
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 31);
  std::thread sender([&] {
    for (int i = 0; i < 20; ++i) {
      CHECK(a.send(Msg::go, {}));
      CHECK(a.send_text(Msg::mode, "{}"));
    }
    CHECK(a.send(Msg::data, big));
  });
  // Short frames, one after the other, arrive whole and in order (the header
  // goes out with MSG_MORE, the end of each frame without it).
  for (int i = 0; i < 20; ++i) {
    auto go = b.recv(seconds(5));
    REQUIRE(go);
    CHECK(go->header.type == Msg::go);
    CHECK(go->payload.empty());
    auto mode = b.recv(seconds(5));
    REQUIRE(mode);
    CHECK(mode->text() == "{}");
  }
  auto data = b.recv(seconds(5));
  REQUIRE(data);
  CHECK(data->payload == big);
  sender.join();
}

namespace {

struct Handshake {
  Result<Bytes> client = fail(Errc::internal, "not run");
  Result<void> server = fail(Errc::internal, "not run");
};

Handshake run_handshake(const Protocol& client_proto, const std::string& client_token,
                        const std::function<Result<void>()>& admit = {}) {
  auto lp = link_pair(0, false);
  Handshake h;
  std::thread server([&] {
    h.server = handshake_server(*lp.b, k_proto, k_token, seconds(5), as_bytes("greetings"), admit);
  });
  h.client = handshake_client(*lp.a, client_proto, client_token, seconds(5));
  server.join();
  return h;
}

}  // namespace

TEST_CASE("link handshake: token, protocol and version must match", "[link][handshake]") {
  SECTION("same token and protocol: the client gets the greeting") {
    auto h = run_handshake(k_proto, k_token);
    REQUIRE(h.client);
    CHECK(as_text(*h.client) == "greetings");
    CHECK(h.server);
  }
  SECTION("wrong token: both sides permission_denied") {
    auto h = run_handshake(k_proto, "another-token-of-16+bytes");
    CHECK(h.client.error().code() == Errc::permission_denied);
    CHECK(h.server.error().code() == Errc::permission_denied);
  }
  SECTION("another protocol or version: not_supported, naming both") {
    for (Protocol other : {Protocol{"other", 3}, Protocol{"unit-test", 2}}) {
      auto h = run_handshake(other, k_token);
      REQUIRE_FALSE(h.client);
      CHECK(h.client.error().code() == Errc::not_supported);
      CHECK_THAT(h.client.error().message(), Catch::Matchers::Contains("unit-test (protocol version 3)"));
      CHECK(h.server.error().code() == Errc::not_supported);
    }
  }
  SECTION("refused by admit: the client learns why") {
    auto h = run_handshake(k_proto, k_token, [] { return Result<void>(fail(Errc::unavailable, "busy")); });
    REQUIRE_FALSE(h.client);
    CHECK(h.client.error().code() == Errc::unavailable);
    CHECK_THAT(h.client.error().message(), Catch::Matchers::Contains("busy"));
  }
  SECTION("proofs bind role, protocol and nonces") {
    auth::Nonce n1{}, n2{};
    n2[0] = 1;
    auto p = [&](Role r, Protocol pr, const auth::Nonce& a, const auth::Nonce& b) {
      return handshake_proof(k_token, r, pr, a, b);
    };
    CHECK(p(Role::client, k_proto, n1, n2) != p(Role::server, k_proto, n1, n2));
    CHECK(p(Role::client, k_proto, n1, n2) != p(Role::client, k_proto, n2, n1));
    CHECK(p(Role::client, k_proto, n1, n2) != p(Role::client, {"unit-test", 4}, n1, n2));
    CHECK(p(Role::client, k_proto, n1, n2) == p(Role::client, k_proto, n1, n2));
  }
}

TEST_CASE("link handshake: one deadline for the whole handshake, however the peer trickles", "[link][handshake]") {
  auto lp = link_pair(0, false);
  Result<void> server = fail(Errc::internal, "not run");
  std::atomic<bool> ended{false};
  auto t0 = steady_clock::now();
  double took = 0;
  std::thread t([&] {
    server = handshake_server(*lp.b, k_proto, k_token, milliseconds(1500), {});
    took = duration<double>(steady_clock::now() - t0).count();
    ended = true;
  });
  // A valid-looking header, then the payload one byte every 300 ms.
  Bytes hello(100, 'x'), h;
  encode_frame_header(h, k_type_hello, 0, 0, hello, 100);
  raw_send(lp.a->fd(), h);
  for (int i = 0; i < 20 && !ended; ++i) {
    std::this_thread::sleep_for(milliseconds(300));
    if (::send(lp.a->fd(), "x", 1, MSG_NOSIGNAL) != 1) {
      break;
    }
  }
  t.join();
  REQUIRE_FALSE(server);
  CHECK(server.error().code() == Errc::unavailable);
  CHECK(took < 3.0);
}

TEST_CASE("link::JsonMessage never throws on a hostile message", "[link][json]") {
  auto j = parse_json_object(as_bytes(R"({"s":"x","n":5,"b":true,"a":[1,2],"bad":[1,"x"],"neg":-1})"), "test");
  REQUIRE(j);
  CHECK(j->string("s").value() == "x");
  CHECK(j->u64("n").value() == 5);
  CHECK(j->boolean("b").value());
  CHECK(j->u64_array("a", 2).value() == std::vector<std::uint64_t>{1, 2});
  CHECK(j->u64_array("a", 1).error().code() == Errc::corruption);
  CHECK(j->u64_array("bad", 9).error().code() == Errc::corruption);
  CHECK(j->u64("neg").error().code() == Errc::corruption);
  CHECK(j->u64("s").error().code() == Errc::corruption);
  CHECK(j->string("missing").error().code() == Errc::corruption);
  CHECK(j->u64_or("missing", 7).value() == 7);
  CHECK(j->u64_or("s", 7).error().code() == Errc::corruption);
  CHECK(parse_json_object(as_bytes("[1]"), "test").error().code() == Errc::corruption);
  CHECK(parse_json_object(as_bytes("{"), "test").error().code() == Errc::corruption);
}

TEST_CASE("link::Server serves real clients among hundreds of idle, garbage and trickling connections",
          "[link][server]") {
  ServerOptions o;
  o.protocol = k_proto;
  o.token = k_token;
  o.handshake_timeout = seconds(10);
  o.max_handshakes = 16;
  o.max_sessions = 4;
  o.total_sessions = 6;
  o.accept_timeout = seconds(60);
  auto server = Server::listen({"127.0.0.1", "0"}, o);
  REQUIRE(server);
  net::HostPort at{"127.0.0.1", std::to_string(server->port())};
  std::atomic<int> served{0};
  Result<void> result;
  std::thread serving([&] {
    result = server->run([&](Link& l) {
      auto f = l.recv(seconds(5));
      if (f && l.send(Msg::end, f->payload)) {
        ++served;
      }
      return AfterSession::serve_on;
    });
  });
  auto client = [&]() -> Result<void> {
    auto fd = UTSUSHI_TRY(net::tcp_connect(at, seconds(5)));
    Link l(std::move(fd), {});
    UTSUSHI_TRY(handshake_client(l, k_proto, k_token, seconds(10)));
    UTSUSHI_TRY(l.send(Msg::data, as_bytes("ping")));
    auto f = UTSUSHI_TRY(l.recv(seconds(5)));
    return as_text(f.payload) == "ping" ? Result<void>() : fail(Errc::corruption, "echo");
  };
  REQUIRE(client());  // warm up: threads and buffers that stay
  long threads0 = proc_status("Threads"), rss0 = proc_status("VmRSS");

  std::vector<Fd> hostile;
  auto t0 = steady_clock::now();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 100; ++i) {
      auto fd = net::tcp_connect(at, seconds(5));
      REQUIRE(fd);
      if (i % 3 == 1) {
        (void)net::send_all(fd->get(), as_bytes("GET / HTTP/1.0\r\n\r\n"));  // garbage
      } else if (i % 3 == 2) {
        Bytes h(k_frame_header, 0xff);  // a huge claimed length, bad hashes
        (void)net::send_all(fd->get(), h);
      }
      hostile.push_back(std::move(*fd));
    }
    // A real client among them: served at once, not after the idle ones' timeout.
    auto c0 = steady_clock::now();
    CHECK(client());
    CHECK(steady_clock::now() - c0 < seconds(3));
  }
  CHECK(steady_clock::now() - t0 < seconds(20));
  long threads1 = proc_status("Threads"), rss1 = proc_status("VmRSS");
  // Bounded by max_handshakes, not by the 300 connections.
  CHECK(threads1 - threads0 <= 2 * 16 + 4);
  CHECK(rss1 - rss0 < 64 * 1024);  // kB
  // Two more clients end the run (total_sessions).
  CHECK(client());
  CHECK(client());
  serving.join();
  CHECK(result);
  CHECK(served == 6);
  CHECK(proc_status("Threads") <= threads0);
}

TEST_CASE("link::Server: accept time runs out, a session may stop it, the busy are refused", "[link][server]") {
  ServerOptions o;
  o.protocol = k_proto;
  o.token = k_token;
  o.total_sessions = 1;
  o.accept_timeout = milliseconds(300);
  auto server = Server::listen({"127.0.0.1", "0"}, o);
  REQUIRE(server);
  auto r = server->run([](Link&) { return AfterSession::serve_on; });
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::unavailable);

  o.total_sessions = 0;
  o.accept_timeout = milliseconds(0);
  o.max_sessions = 1;
  auto s2 = Server::listen({"127.0.0.1", "0"}, o);
  REQUIRE(s2);
  net::HostPort at{"127.0.0.1", std::to_string(s2->port())};
  std::promise<void> in_session, release;
  auto released = release.get_future().share();
  std::thread serving([&] {
    CHECK(s2->run([&](Link&) {
      in_session.set_value();
      released.wait();
      return AfterSession::stop;
    }));
  });
  auto connect = [&] {
    auto fd = net::tcp_connect(at, seconds(5));
    REQUIRE(fd);
    auto l = std::make_unique<Link>(std::move(*fd), LinkOptions{});
    auto h = handshake_client(*l, k_proto, k_token, seconds(5));
    return std::make_pair(std::move(l), std::move(h));
  };
  auto [first, h1] = connect();
  REQUIRE(h1);
  in_session.get_future().wait();
  auto [second, h2] = connect();
  REQUIRE_FALSE(h2);
  CHECK(h2.error().code() == Errc::unavailable);  // busy
  release.set_value();
  serving.join();  // the session asked to stop
}
