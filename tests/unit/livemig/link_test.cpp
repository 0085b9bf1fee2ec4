#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "utsushi/livemig/frame.h"
#include "utsushi/livemig/handshake.h"
#include "utsushi/livemig/link.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace std::chrono;

namespace {

struct LinkPair {
  std::unique_ptr<Link> a;
  std::unique_ptr<Link> b;
};

LinkPair link_pair(std::uint64_t rate = 0) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  return {std::make_unique<Link>(Fd(sv[0]), LinkOptions{rate, seconds(5)}),
          std::make_unique<Link>(Fd(sv[1]), LinkOptions{0, seconds(5)})};
}

const std::string k_token = "0123456789abcdef-test-token";

}  // namespace

TEST_CASE("livemig frame header round trip and corruption", "[livemig][frame]") {
  Bytes payload{1, 2, 3, 4, 5};
  Bytes h;
  encode_frame_header(h, FrameType::data, k_frame_zstd, 7, payload, 99);
  REQUIRE(h.size() == k_frame_header);
  auto d = decode_frame_header(std::span<const std::uint8_t, k_frame_header>(h.data(), k_frame_header));
  REQUIRE(d);
  CHECK(d->type == FrameType::data);
  CHECK(d->seq == 7);
  CHECK(d->payload_len == 5);
  CHECK(d->raw_len == 99);
  CHECK(check_frame_payload(*d, payload));
  Bytes bad = payload;
  bad[2] ^= 1;
  CHECK(check_frame_payload(*d, bad).error().code() == Errc::corruption);
  for (std::size_t i = 0; i < k_frame_header; ++i) {
    Bytes c = h;
    c[i] ^= 0x04;
    auto r = decode_frame_header(std::span<const std::uint8_t, k_frame_header>(c.data(), k_frame_header));
    CHECK_FALSE(r);
  }
}

TEST_CASE("livemig frame types of the commit handshake decode, gaps do not", "[livemig][frame]") {
  for (auto t : {FrameType::mode, FrameType::ready, FrameType::go, FrameType::running}) {
    Bytes h;
    encode_frame_header(h, t, 0, 1, {}, 0);
    auto d = decode_frame_header(std::span<const std::uint8_t, k_frame_header>(h.data(), k_frame_header));
    REQUIRE(d);
    CHECK(d->type == t);
  }
  for (std::uint8_t t : {0, 8, 9, 14, 19}) {
    CHECK_FALSE(known_frame_type(t));
    Bytes h;
    encode_frame_header(h, static_cast<FrameType>(t), 0, 1, {}, 0);
    CHECK(decode_frame_header(std::span<const std::uint8_t, k_frame_header>(h.data(), k_frame_header)).error().code() ==
          Errc::corruption);
  }
}

TEST_CASE("livemig::Link delivers frames in order and detects corruption", "[livemig][frame]") {
  auto lp = link_pair();
    Link& a = *lp.a;
    Link& b = *lp.b;
  Bytes p(30000, 7);
  REQUIRE(a.send(FrameType::data, p));
  REQUIRE(a.send(FrameType::end, Bytes{}));
  auto f1 = b.recv(seconds(2));
  REQUIRE(f1);
  CHECK(f1->payload == p);
  auto f2 = b.recv(seconds(2));
  REQUIRE(f2);
  CHECK(f2->header.type == FrameType::end);
  // A frame with a flipped payload byte (raw socket write) is rejected.
  Bytes h;
  Bytes q{1, 2, 3};
  encode_frame_header(h, FrameType::data, 0, 2, q, 3);
  q[1] ^= 0x40;
  put_bytes(h, q);
  REQUIRE(::send(a.fd(), h.data(), h.size(), 0) == static_cast<ssize_t>(h.size()));
  auto f3 = b.recv(seconds(2));
  REQUIRE_FALSE(f3);
  CHECK(f3.error().code() == Errc::corruption);
}

TEST_CASE("livemig::Link refuses a replayed sequence number", "[livemig][frame]") {
  auto lp = link_pair();
    Link& a = *lp.a;
    Link& b = *lp.b;
  Bytes h;
  Bytes q{9};
  encode_frame_header(h, FrameType::data, 0, 5, q, 1);
  put_bytes(h, q);
  REQUIRE(::send(a.fd(), h.data(), h.size(), 0) == static_cast<ssize_t>(h.size()));
  auto f = b.recv(seconds(2));
  REQUIRE_FALSE(f);
  CHECK(f.error().code() == Errc::corruption);
}

TEST_CASE("livemig::Link caps its rate", "[livemig][frame]") {
  auto lp = link_pair(4 << 20);  // 4 MiB/s
  Link& a = *lp.a;
  Link& b = *lp.b;
  std::thread reader([&b] {
    for (int i = 0; i < 4; ++i) {
      REQUIRE(b.recv(seconds(5)));
    }
  });
  auto t0 = steady_clock::now();
  Bytes p(512 * 1024, 1);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(a.send(FrameType::data, p));
  }
  double s = duration<double>(steady_clock::now() - t0).count();
  reader.join();
  CHECK(s > 0.4);  // 2 MiB at 4 MiB/s, minus one burst chunk
  CHECK(s < 1.5);
}

TEST_CASE("livemig handshake accepts the right token and refuses a wrong one", "[livemig][handshake]") {
  SECTION("same token; the sender learns the receiver's kind") {
    for (auto kind : {ReceiverKind::qmp, ReceiverKind::libvirt}) {
      auto lp = link_pair();
      Link& a = *lp.a;
      Link& b = *lp.b;
      Result<void> server_result;
      std::thread server([&] { server_result = handshake_server(b, k_token, seconds(5), kind); });
      auto client_result = handshake_client(a, k_token, seconds(5));
      server.join();
      REQUIRE(client_result);
      CHECK(*client_result == kind);
      CHECK(server_result);
    }
  }
  SECTION("a receiver from before the kind was announced: empty AUTH_OK, kind unknown") {
    auto lp = link_pair();
    Link& a = *lp.a;
    Link& b = *lp.b;
    bool server_ok = false;
    std::thread server([&] {
      auto hello = b.recv(seconds(5));
      if (!hello || hello->payload.size() != 4 + 32) {
        return;
      }
      Nonce cn{};
      std::copy_n(hello->payload.begin() + 4, 32, cn.begin());
      Nonce sn{};
      sn[0] = 7;
      Bytes reply;
      reply.reserve(4 + 32 + 32);  // GCC 12 -O3 warns (stringop-overflow) on growth from empty here
      put_string(reply, "LMH1");
      put_bytes(reply, sn);
      put_bytes(reply, handshake_mac(k_token, Role::server, cn, sn));
      server_ok = b.send(FrameType::hello, reply) && b.recv(seconds(5)) && b.send(FrameType::auth_ok, {});
    });
    auto client_result = handshake_client(a, k_token, seconds(5));
    server.join();
    CHECK(server_ok);
    REQUIRE(client_result);
    CHECK(*client_result == ReceiverKind::unknown);
  }
  SECTION("wrong token") {
    auto lp = link_pair();
    Link& a = *lp.a;
    Link& b = *lp.b;
    Result<void> server_result;
    std::thread server([&] { server_result = handshake_server(b, k_token, seconds(5), ReceiverKind::qmp); });
    auto client_result = handshake_client(a, "another-token-of-16+bytes", seconds(5));
    server.join();
    REQUIRE_FALSE(client_result);
    CHECK(client_result.error().code() == Errc::permission_denied);
    REQUIRE_FALSE(server_result);
  }
  SECTION("expect_receiver lets a receiver of the same or an unknown kind through, silently") {
    auto lp = link_pair();
    CHECK(expect_receiver(*lp.a, ReceiverKind::qmp, ReceiverKind::qmp, "127.0.0.1:1"));
    CHECK(expect_receiver(*lp.a, ReceiverKind::libvirt, ReceiverKind::libvirt, "127.0.0.1:1"));
    CHECK(expect_receiver(*lp.a, ReceiverKind::libvirt, ReceiverKind::unknown, "127.0.0.1:1"));
    CHECK(lp.a->frames_sent() == 0);
  }
  SECTION("macs bind role and nonces") {
    Nonce n1{}, n2{};
    n2[0] = 1;
    CHECK(handshake_mac(k_token, Role::client, n1, n2) != handshake_mac(k_token, Role::server, n1, n2));
    CHECK(handshake_mac(k_token, Role::client, n1, n2) != handshake_mac(k_token, Role::client, n2, n1));
    CHECK(handshake_mac(k_token, Role::client, n1, n2) == handshake_mac(k_token, Role::client, n1, n2));
  }
}

TEST_CASE("livemig::parse_rate and parse_host_port", "[livemig][cli]") {
  CHECK(parse_rate("32M").value() == 32u << 20);
  CHECK(parse_rate("32MiB/s").value() == 32u << 20);
  CHECK(parse_rate("500K").value() == 500u << 10);
  CHECK(parse_rate("1000").value() == 1000u);
  CHECK_FALSE(parse_rate("fast"));
  CHECK_FALSE(parse_rate("-3M"));
  auto hp = parse_host_port("127.0.0.1:4444");
  REQUIRE(hp);
  CHECK(hp->host == "127.0.0.1");
  CHECK(hp->port == "4444");
  CHECK(parse_host_port("[::1]:80").value().host == "::1");
  CHECK_FALSE(parse_host_port("nohost"));
  CHECK_FALSE(parse_host_port("h:99999"));
}

TEST_CASE("livemig::Link over TCP: no Nagle, empty and multi-chunk payloads whole", "[livemig][frame]") {
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
  CHECK(nodelay(client_fd) == 1);
  CHECK(nodelay(server_fd) == 1);
  Bytes big(200 * 1024 + 7);  // several pacing chunks, the last one short
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 31);
  std::thread sender([&] {
    for (int i = 0; i < 20; ++i) {
      CHECK(a.send(FrameType::go, {}));
      CHECK(a.send_text(FrameType::mode, "{}"));
    }
    CHECK(a.send(FrameType::data, big));
  });
  // Short frames, one after the other, arrive whole and in order (the header
  // goes out with MSG_MORE, the end of each frame without it).
  for (int i = 0; i < 20; ++i) {
    auto go = b.recv(seconds(5));
    REQUIRE(go);
    CHECK(go->header.type == FrameType::go);
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
