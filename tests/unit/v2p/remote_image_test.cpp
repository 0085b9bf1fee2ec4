// v2p serve / restore --from's image link over 127.0.0.1: the wire messages,
// reads and extents equal to the file's, refusals, and a server that dies and
// comes back. The server runs in a child process (it serves until killed).
#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <future>
#include <string>
#include <thread>

#include "test_support.h"
#include "utsushi/common/link/handshake.h"
#include "utsushi/common/net.h"
#include "utsushi/v2p/image_wire.h"
#include "utsushi/v2p/remote_image.h"

using utsushi::Errc;
using namespace utsushi::v2p;
namespace wire = utsushi::v2p::wire;

namespace {

constexpr const char* k_token = "correct horse battery staple";

// `v2p serve` of `image` in a child process, on `port` (0: any); killed on
// scope exit.
class ChildServer {
 public:
  ChildServer(const std::string& image, std::uint16_t port) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    m_pid = ::fork();
    REQUIRE(m_pid >= 0);
    if (m_pid == 0) {
      ::close(fds[0]);
      ServeImageOptions o;
      o.image = image;
      o.listen = "127.0.0.1:" + std::to_string(port);
      o.token = k_token;
      o.on_listening = [fd = fds[1]](std::uint16_t p) { (void)!::write(fd, &p, sizeof p); };
      auto r = serve_image(o);
      ::_exit(r ? 0 : 3);
    }
    ::close(fds[1]);
    std::uint16_t p = 0;
    m_listening = ::read(fds[0], &p, sizeof p) == sizeof p;
    ::close(fds[0]);
    m_port = p;
  }
  ~ChildServer() { kill(); }
  ChildServer(const ChildServer&) = delete;
  ChildServer& operator=(const ChildServer&) = delete;

  bool listening() const { return m_listening; }
  std::uint16_t port() const { return m_port; }
  std::string address() const { return "127.0.0.1:" + std::to_string(m_port); }
  // The child's exit status once it exited by itself (not killed).
  int wait_exit() {
    int status = 0;
    ::waitpid(m_pid, &status, 0);
    m_pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void kill() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
      m_pid = -1;
    }
  }

 private:
  pid_t m_pid = -1;
  bool m_listening = false;
  std::uint16_t m_port = 0;
};

// A 24 MiB raw image: patterned data, then a hole, then data again.
std::string make_image(const utsushi::test::TempDir& dir) {
  std::string path = dir.file("image.raw");
  utsushi::test::make_sparse_file(path, 24u << 20);
  utsushi::test::write_at(path, 0, utsushi::test::pattern(8u << 20, 1));
  utsushi::test::write_at(path, 16u << 20, utsushi::test::pattern(8u << 20, 2));
  return path;
}

RemoteOptions remote(const ChildServer& s, std::chrono::seconds reconnect_for = std::chrono::seconds(10)) {
  return RemoteOptions{s.address(), k_token, reconnect_for};
}

}  // namespace

TEST_CASE("v2p image wire: messages round-trip, hostile ones are errors", "[v2p][net]") {
  auto info = wire::decode_info(wire::encode_info({1u << 30, "qcow2", "/a:1:2", "a.qcow2"}));
  REQUIRE(info);
  CHECK(info->size == 1u << 30);
  CHECK(info->format == "qcow2");
  CHECK_FALSE(wire::decode_info(utsushi::as_bytes(std::string(R"({"size":0,"format":"raw","identity":"x"})"))));
  CHECK_FALSE(wire::decode_info(utsushi::as_bytes(std::string(R"({"size":"big","format":"raw","identity":"x"})"))));

  auto read = wire::decode_read(wire::encode_read({4096, 512}), 8192);
  REQUIRE(read);
  CHECK(read->offset == 4096);
  CHECK_FALSE(wire::decode_read(wire::encode_read({8000, 512}), 8192));             // past the end
  CHECK_FALSE(wire::decode_read(wire::encode_read({UINT64_MAX - 10, 512}), 8192));  // overflow
  CHECK_FALSE(wire::decode_read(wire::encode_read({0, 0}), 8192));
  CHECK_FALSE(wire::decode_read(wire::encode_read({0, wire::k_max_read + 1}), 1u << 30));
  const utsushi::Bytes short_read = wire::encode_read({0, 512});
  CHECK_FALSE(wire::decode_read(std::span(short_read).first(11), 8192));

  using utsushi::imagefmt::Extent;
  using utsushi::imagefmt::ExtentType;
  std::vector<Extent> ext{{0, 4096, ExtentType::data}, {4096, 4096, ExtentType::hole}};
  wire::ExtentsRequest asked{0, 8192};
  auto back = wire::decode_extents(wire::encode_extents(ext), asked, 8192);
  REQUIRE(back);
  CHECK(back->size() == 2);
  CHECK((*back)[1].type == ExtentType::hole);
  CHECK_FALSE(wire::decode_extents(wire::encode_extents(ext), {4096, 4096}, 8192));  // not from the asked offset
  CHECK_FALSE(wire::decode_extents(wire::encode_extents(ext), asked, 4096));         // past the image
  std::vector<Extent> gap{{0, 4096, ExtentType::data}, {5000, 10, ExtentType::data}};
  CHECK_FALSE(wire::decode_extents(wire::encode_extents(gap), asked, 8192));
  auto bad_type = wire::encode_extents(ext);
  bad_type.back() = 9;
  CHECK_FALSE(wire::decode_extents(bad_type, asked, 8192));
  CHECK_FALSE(wire::decode_extents(wire::encode_extents({}), asked, 8192));
  CHECK(wire::decode_error(wire::encode_error("disk on fire")).value() == "disk on fire");
}

TEST_CASE("v2p remote image: reads and extents equal the served file's", "[v2p][net]") {
  utsushi::test::TempDir dir;
  std::string path = make_image(dir);
  ChildServer server(path, 0);
  REQUIRE(server.listening());

  auto opened = open_remote_image(remote(server));
  REQUIRE(opened);
  auto& dev = *opened->device;
  CHECK(dev.size() == 24u << 20);
  CHECK(dev.format_name() == "raw");
  CHECK_FALSE(opened->identity.empty());

  std::vector<std::thread> readers;
  std::atomic<int> mismatches{0};
  for (unsigned t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (std::uint64_t off = t * (1u << 20); off < dev.size(); off += 4u << 20) {
        std::vector<std::uint8_t> got(3u << 20);
        std::size_t len = std::min<std::uint64_t>(got.size(), dev.size() - off);
        got.resize(len);
        if (!dev.pread(got, off) || got != utsushi::test::read_at(path, off, len)) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& r : readers) {
    r.join();
  }
  CHECK(mismatches == 0);
  std::vector<std::uint8_t> odd(5000);
  REQUIRE(dev.pread(odd, 8u * 1024 * 1024 - 1234));
  CHECK(odd == utsushi::test::read_at(path, 8u * 1024 * 1024 - 1234, 5000));

  auto extents = dev.extents();
  REQUIRE(extents);
  bool hole_in_middle = false;
  for (const auto& e : *extents) {
    if (e.offset <= (12u << 20) && e.offset + e.length > (12u << 20)) {
      hole_in_middle = e.type != utsushi::imagefmt::ExtentType::data;
    }
  }
  CHECK(hole_in_middle);
}

TEST_CASE("v2p remote image: a wrong token, a hostile request, a missing image", "[v2p][net]") {
  utsushi::test::TempDir dir;
  std::string path = make_image(dir);
  ChildServer server(path, 0);
  REQUIRE(server.listening());

  RemoteOptions wrong = remote(server);
  wrong.token = "wrong horse battery staple";
  auto refused = open_remote_image(wrong);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code() == Errc::permission_denied);

  // A READ past the end, sent by hand: the server ends that link, and serves on.
  {
    auto fd = utsushi::net::tcp_connect(utsushi::net::parse_host_port(server.address()).value(),
                                        std::chrono::seconds(5));
    REQUIRE(fd);
    utsushi::link::Link l(std::move(*fd), {0, std::chrono::seconds(5), wire::k_max_payload});
    REQUIRE(utsushi::link::handshake_client(l, wire::k_protocol, k_token, std::chrono::seconds(5)));
    REQUIRE(l.send(wire::MsgType::read, wire::encode_read({24u << 20, 4096})));
    auto reply = l.recv(std::chrono::seconds(5));
    CHECK_FALSE(reply);
  }
  auto still = open_remote_image(remote(server));
  REQUIRE(still);
  std::vector<std::uint8_t> b(4096);
  CHECK(still->device->pread(b, 0));

  ChildServer missing(dir.file("no-such.qcow2"), 0);
  CHECK_FALSE(missing.listening());
  CHECK(missing.wait_exit() == 3);
}

TEST_CASE("v2p remote image: a server that dies is waited for, and given up on", "[v2p][net]") {
  utsushi::test::TempDir dir;
  std::string path = make_image(dir);
  auto server = std::make_unique<ChildServer>(path, 0);
  REQUIRE(server->listening());
  const std::uint16_t port = server->port();
  auto opened = open_remote_image(remote(*server, std::chrono::seconds(20)));
  REQUIRE(opened);
  std::vector<std::uint8_t> b(1u << 20);
  REQUIRE(opened->device->pread(b, 0));

  server->kill();
  auto reading = std::async(std::launch::async, [&] { return opened->device->pread(b, 16u << 20); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  server = std::make_unique<ChildServer>(path, port);  // the read goes on a new link, to the new server
  REQUIRE(server->listening());
  auto read = reading.get();
  REQUIRE(read);
  CHECK(b == utsushi::test::read_at(path, 16u << 20, 1u << 20));

  auto quick = open_remote_image(remote(*server, std::chrono::seconds(2)));
  REQUIRE(quick);
  server->kill();
  auto gone = quick->device->pread(b, 0);
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code() == Errc::unavailable);
  CHECK_THAT(gone.error().message(), Catch::Contains("did not answer"));
}
