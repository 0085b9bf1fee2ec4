// p2v serve / capture --to over 127.0.0.1: the token handshake, a corrupt
// chunk re-sent, resume, and byte-identity with a local capture.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>
#include <thread>

#include "p2v_test_util.h"
#include "test_support.h"
#include "utsushi/p2v/client.h"
#include "utsushi/p2v/server.h"
#include "utsushi/p2v/wire_format.h"

using utsushi::Errc;
using namespace utsushi::p2v;

namespace {

std::string free_port_address() {
  std::random_device rd;
  for (int i = 0; i < 50; ++i) {
    std::string a = "127.0.0.1:" + std::to_string(20000 + rd() % 30000);
    if (auto fd = wire::listen_on(a)) {
      return a;  // closed again: free a moment ago
    }
  }
  FAIL("no free port");
  return {};
}

}  // namespace

TEST_CASE("p2v::wire chunks and plan ids", "[p2v][net]") {
  ByteRanges used;
  used.add(0, 4096);
  used.add((4u << 20) - 100, 300);  // crosses a chunk boundary
  auto chunks = wire::make_chunks(used);
  REQUIRE(chunks.size() == 3);
  CHECK(chunks[1].length == 100);
  CHECK(chunks[2].offset == 4u << 20);
  CHECK(wire::plan_id(1 << 30, chunks) != wire::plan_id(2 << 30, chunks));
  auto n = wire::random_nonce();
  auto a = wire::auth_mac("token", "x", n, n);
  CHECK(wire::mac_equal(a, wire::auth_mac("token", "x", n, n)));
  CHECK_FALSE(wire::mac_equal(a, wire::auth_mac("tokeN", "x", n, n)));
  CHECK_FALSE(wire::split_address("nohost"));
  CHECK(wire::split_address("[::1]:80").value().first == "::1");
}

TEST_CASE("p2v serve + send_disk: wrong token refused, corrupt chunk re-sent, identical image", "[p2v][net]") {
  if (!utsushi::p2v::test::have("mkfs.ext4")) {
    return;
  }
  utsushi::test::TempDir dir;
  std::string disk = dir.file("disk.raw");
  REQUIRE(utsushi::p2v::test::sh("truncate -s 48M " + disk + " && mkfs.ext4 -q -E root_owner " + disk +
                        " && head -c 9000000 /dev/urandom > " + dir.file("f") + " && debugfs -w -R 'write " +
                        dir.file("f") + " f' " + disk) == 0);
  std::string out_dir = dir.file("srv");
  ServeOptions so;
  so.listen = free_port_address();
  so.token = "correct horse";
  so.output_dir = out_dir;
  so.once = true;
  utsushi::Result<void> served;
  std::thread server([&] { served = serve(so); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  ClientOptions co;
  co.address = so.listen;
  co.token = "wrong";
  co.format = OutputFormat::raw;
  auto bad = send_disk(disk, "disk.raw", co);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Errc::permission_denied);
  CHECK(utsushi::p2v::test::sh("ls -A " + out_dir + " | grep -q .") != 0);  // nothing written

  co.token = "correct horse";
  ::setenv("UTSUSHI_P2V_CORRUPT_CHUNK", "2", 1);
  auto good = send_disk(disk, "disk.raw", co);
  ::unsetenv("UTSUSHI_P2V_CORRUPT_CHUNK");
  server.join();
  REQUIRE(good);
  REQUIRE(served);
  CHECK(good->resent == 1);
  auto local = utsushi::p2v::test::capture_raw(disk, dir.file("local.raw"), false);
  REQUIRE(local);
  CHECK(utsushi::p2v::test::sh("cmp " + dir.file("local.raw") + " " + out_dir + "/disk.raw") == 0);
  CHECK(utsushi::p2v::test::sh("e2fsck -fn " + out_dir + "/disk.raw") == 0);
}
