// p2v serve / capture --to over 127.0.0.1: the token handshake and
// byte-identity with a local capture. (Damage on the wire, kills and resume
// are tested from outside, through a fault relay: tests/e2e/p2v.)
#include <catch2/catch.hpp>

#include <thread>

#include "p2v_test_util.h"
#include "test_support.h"
#include "utsushi/common/auth.h"
#include "utsushi/common/net.h"
#include "utsushi/p2v/client.h"
#include "utsushi/p2v/server.h"
#include "utsushi/p2v/wire_format.h"

using utsushi::Errc;
using namespace utsushi::p2v;
using utsushi::disk::ByteRanges;

namespace {

std::string free_port_address() {
  auto l = utsushi::net::Listener::listen({"127.0.0.1", "0"});
  REQUIRE(l);
  return "127.0.0.1:" + std::to_string(l->port());  // closed again: free a moment ago
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
  auto n = utsushi::auth::random_nonce().value();
  auto a = wire::auth_mac("token", "x", n, n);
  CHECK(a == wire::auth_mac("token", "x", n, n));
  CHECK(a != wire::auth_mac("tokeN", "x", n, n));
  CHECK(a != wire::auth_mac("token", "y", n, n));
}

TEST_CASE("p2v serve refuses a short token", "[p2v][net]") {
  ServeOptions so;
  so.listen = "127.0.0.1:0";
  so.token = "fifteen-bytes!!";
  so.output_dir = "/nonexistent";
  auto r = serve(so);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::invalid_argument);
}

TEST_CASE("p2v serve + send_disk: short and wrong tokens refused, identical image", "[p2v][net]") {
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
  so.token = "correct horse battery";
  so.output_dir = out_dir;
  so.once = true;
  utsushi::Result<void> served;
  std::thread server([&] { served = serve(so); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  ClientOptions co;
  co.address = so.listen;
  co.token = "short";
  co.format = OutputFormat::raw;
  auto too_short = send_disk(disk, "disk.raw", co);
  REQUIRE_FALSE(too_short);
  CHECK(too_short.error().code() == Errc::invalid_argument);
  co.token = "wrong horse battery";
  auto bad = send_disk(disk, "disk.raw", co);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Errc::permission_denied);
  CHECK(utsushi::p2v::test::sh("ls -A " + out_dir + " | grep -q .") != 0);  // nothing written

  co.token = "correct horse battery";
  auto good = send_disk(disk, "disk.raw", co);
  server.join();
  REQUIRE(good);
  REQUIRE(served);
  CHECK(good->resent == 0);
  auto local = utsushi::p2v::test::capture_raw(disk, dir.file("local.raw"), false);
  REQUIRE(local);
  CHECK(utsushi::p2v::test::sh("cmp " + dir.file("local.raw") + " " + out_dir + "/disk.raw") == 0);
  CHECK(utsushi::p2v::test::sh("e2fsck -fn " + out_dir + "/disk.raw") == 0);
}
