#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <thread>
#include <vector>

#include "utsushi/common/net.h"

using namespace utsushi;
using namespace std::chrono;

TEST_CASE("net::parse_host_port accepts HOST:PORT, [IPV6]:PORT and :PORT", "[net]") {
  auto a = net::parse_host_port("example.org:7400");
  REQUIRE(a);
  CHECK(a->host == "example.org");
  CHECK(a->port == "7400");
  CHECK(net::parse_host_port("10.0.0.1:0").value().host == "10.0.0.1");
  auto v6 = net::parse_host_port("[fe80::1%eth0]:65535");
  REQUIRE(v6);
  CHECK(v6->host == "fe80::1%eth0");
  CHECK(v6->port == "65535");
  CHECK(net::parse_host_port("[::1]:80").value().host == "::1");
  auto any = net::parse_host_port(":22");
  REQUIRE(any);
  CHECK(any->host.empty());
  CHECK(net::format_host_port(*v6) == "[fe80::1%eth0]:65535");
  CHECK(net::format_host_port(*a) == "example.org:7400");
}

TEST_CASE("net::parse_host_port refuses malformed addresses", "[net]") {
  for (const char* bad : {"", "nohost", "host:", "host:65536", "host:99999999999", "host:-1", "host:+1", "host:8o",
                          "host: 80", "::1:80", "::1", "[::1]", "[::1]80", "[::1]:", "[]:80", "[::1:80"}) {
    INFO(bad);
    auto r = net::parse_host_port(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::invalid_argument);
    CHECK(r.error().message().find(bad) != std::string::npos);
  }
}

TEST_CASE("net::Listener and tcp_connect talk over loopback", "[net]") {
  auto l = net::Listener::listen({"127.0.0.1", "0"});
  REQUIRE(l);
  REQUIRE(l->port() != 0);
  auto c = net::tcp_connect({"127.0.0.1", std::to_string(l->port())}, seconds(5));
  REQUIRE(c);
  auto s = l->accept(seconds(5));
  REQUIRE(s);
  std::vector<std::uint8_t> out{1, 2, 3, 4, 5}, in(5);
  REQUIRE(net::send_all(c->get(), out));
  REQUIRE(net::recv_all(s->get(), in));
  CHECK(in == out);
  // A blocking socket: recv waits rather than failing with EAGAIN.
  CHECK((::fcntl(c->get(), F_GETFL) & O_NONBLOCK) == 0);
}

TEST_CASE("net::Listener works on IPv6 loopback", "[net]") {
  auto l = net::Listener::listen({"::1", "0"});
  if (!l) {
    WARN("no IPv6 loopback here: " << l.error().message());
    return;
  }
  auto c = net::tcp_connect(net::parse_host_port("[::1]:" + std::to_string(l->port())).value(), seconds(5));
  REQUIRE(c);
  CHECK(l->accept(seconds(5)));
}

TEST_CASE("net::Listener::accept times out", "[net]") {
  auto l = net::Listener::listen({"127.0.0.1", "0"});
  REQUIRE(l);
  auto t0 = steady_clock::now();
  auto s = l->accept(milliseconds(150));
  REQUIRE_FALSE(s);
  CHECK(s.error().code() == Errc::unavailable);
  CHECK(steady_clock::now() - t0 >= milliseconds(150));
}

TEST_CASE("net::tcp_connect to a port nobody listens on fails", "[net]") {
  // A port that was free a moment ago: refused at once.
  std::uint16_t port;
  {
    auto l = net::Listener::listen({"127.0.0.1", "0"});
    REQUIRE(l);
    port = l->port();
  }
  auto t0 = steady_clock::now();
  auto r = net::tcp_connect({"127.0.0.1", std::to_string(port)}, seconds(5));
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::unavailable);
  CHECK(r.error().message().find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
  CHECK(steady_clock::now() - t0 < seconds(2));
}

TEST_CASE("net::tcp_connect gives up after its timeout", "[net]") {
  // A socket that is bound but never accepts and whose queue is full: the
  // kernel drops further SYNs, so the connect neither succeeds nor is refused.
  auto l = net::Listener::listen({"127.0.0.1", "0"}, 0);
  REQUIRE(l);
  net::HostPort at{"127.0.0.1", std::to_string(l->port())};
  std::vector<Fd> filler;
  bool blocked = false;
  for (int i = 0; i < 8 && !blocked; ++i) {
    auto t0 = steady_clock::now();
    auto r = net::tcp_connect(at, milliseconds(300));
    if (r) {
      filler.push_back(std::move(*r));
      continue;
    }
    blocked = true;
    CHECK(r.error().code() == Errc::unavailable);
    CHECK(r.error().message().find("timed out") != std::string::npos);
    CHECK(steady_clock::now() - t0 >= milliseconds(300));
    CHECK(steady_clock::now() - t0 < seconds(3));
  }
  CHECK(blocked);
}

TEST_CASE("net::recv_all reports a receive timeout and a closed peer", "[net]") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  Fd a(sv[0]), b(sv[1]);
  REQUIRE(net::set_receive_timeout(a.get(), milliseconds(100)));
  std::vector<std::uint8_t> buf(4);
  auto t = net::recv_all(a.get(), buf);
  REQUIRE_FALSE(t);
  CHECK(t.error().code() == Errc::unavailable);
  CHECK(t.error().message().find("too long") != std::string::npos);
  std::uint8_t two[2] = {9, 9};
  REQUIRE(net::send_all(b.get(), two));
  REQUIRE(b.close());
  auto c = net::recv_all(a.get(), buf);  // two bytes, then EOF
  REQUIRE_FALSE(c);
  CHECK(c.error().message().find("closed") != std::string::npos);
  auto s = net::send_all(a.get(), two);  // no SIGPIPE, an error
  REQUIRE_FALSE(s);
  CHECK(s.error().code() == Errc::unavailable);
}
