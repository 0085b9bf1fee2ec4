// p2v serve / capture --to over 127.0.0.1: the token handshake and
// byte-identity with a local capture. (Damage on the wire, kills and resume
// are tested from outside, through a fault relay: tests/e2e/p2v.)
#include <catch2/catch.hpp>

#include <future>
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

TEST_CASE("p2v::wire chunks and plan ids", "[p2v][net]") {
  ByteRanges used;
  used.add(0, 4096);
  used.add((4u << 20) - 100, 300);  // crosses a chunk boundary
  auto chunks = wire::make_chunks(used);
  REQUIRE(chunks.size() == 3);
  CHECK(chunks[1].length == 100);
  CHECK(chunks[2].offset == 4u << 20);
  CHECK(wire::plan_id(1 << 30, chunks) != wire::plan_id(2 << 30, chunks));
}

namespace {
std::span<const std::uint8_t> bytes_of(const std::string& s) { return utsushi::as_bytes(s); }
}  // namespace

TEST_CASE("p2v::wire messages round-trip, and hostile ones are errors, never exceptions", "[p2v][net]") {
  wire::Begin b{"host-1", "sda.qcow2", 1 << 30, "qcow2", true, 5, "00ff"};
  auto d = wire::decode_begin(wire::encode_begin(b));
  REQUIRE(d);
  CHECK(d->client == "host-1");
  CHECK(d->name == "sda.qcow2");
  CHECK(d->chunks == 5);
  CHECK(d->compress);
  for (const char* hostile : {
           R"({"client":"h","name":"n","size":"big","format":"raw","chunk_size":4194304,"chunks":1,"plan_id":"x"})",
           R"({"client":"h","name":"../etc/passwd","size":1024,"format":"raw","chunk_size":4194304,"chunks":1,"plan_id":"x"})",
           R"({"client":"h","name":"n","size":1024,"format":"raw","chunk_size":4194304,"chunks":1,"plan_id":"x"})",
           R"({"client":".","name":"n","size":1024,"format":"raw","chunk_size":4194304,"chunks":1,"plan_id":"x"})",
           R"({"client":"h","name":"n","size":1024,"format":"raw","chunk_size":4194304,"chunks":99,"plan_id":"x"})",
           R"({"client":"h","name":"n","size":2199023255552,"format":"raw","chunk_size":4194304,"chunks":4294967296,"plan_id":"x"})",
           R"([1,2])", "{", ""}) {
    CHECK_FALSE(wire::decode_begin(bytes_of(hostile)));
  }
  auto r = wire::decode_result(wire::encode_result({wire::Outcome::Status::resend, {1, 3}, {}, {}}), 4);
  REQUIRE(r);
  CHECK(r->resend == std::vector<std::uint64_t>{1, 3});
  // The type_error of p2v 1: a "resend" that is not an array of indexes.
  for (const char* hostile : {R"({"status":"resend","resend":"all"})", R"({"status":"resend","resend":[1,"x"]})",
                              R"({"status":"resend","resend":[9]})", R"({"status":7})", R"({"status":"ok","path":1})"}) {
    auto h = wire::decode_result(bytes_of(hostile), 4);
    REQUIRE_FALSE(h);
    CHECK(h.error().code() == Errc::corruption);
  }
  std::vector<bool> held{true, false, true};
  CHECK(wire::decode_state(wire::encode_state(held), 3).value() == held);
  CHECK_FALSE(wire::decode_state(wire::encode_state(held), 4));
  utsushi::Bytes chunk;
  wire::encode_chunk_header(chunk, {2, 4096, 512, 7});
  CHECK(wire::decode_chunk(chunk, 3, 8192));
  CHECK_FALSE(wire::decode_chunk(chunk, 2, 8192));         // index
  CHECK_FALSE(wire::decode_chunk(chunk, 3, 4096));         // past the disk
  CHECK_FALSE(wire::decode_chunk(std::span(chunk).first(20), 3, 8192));  // short
  CHECK(wire::check_name("web-01", "n"));
  CHECK_FALSE(wire::check_name("a/b", "n"));
  CHECK_FALSE(wire::check_name(std::string(129, 'a'), "n"));
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
  so.token = "correct horse battery";
  so.output_dir = out_dir;
  so.once = true;
  so.listen = "127.0.0.1:0";
  std::promise<std::uint16_t> listening;
  so.on_listening = [&](std::uint16_t port) { listening.set_value(port); };
  utsushi::Result<void> served;
  std::thread server([&] { served = serve(so); });

  ClientOptions co;
  co.address = "127.0.0.1:" + std::to_string(listening.get_future().get());
  co.client_name = "host1";
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
  CHECK(utsushi::p2v::test::sh("cmp " + dir.file("local.raw") + " " + out_dir + "/host1/disk.raw") == 0);
  CHECK(utsushi::p2v::test::sh("e2fsck -fn " + out_dir + "/host1/disk.raw") == 0);
}
