// nbd_client.h and disk_copy.h against a real NBD server (qemu-nbd on a raw
// file in a temporary directory): extents, reads cut into batches within
// their limits, all-zero granules sent as zero ranges, batches written back,
// and the errors of a missing export, a missing context and a range past the
// end. QEMU's own exports (allocation depth, dirty bitmaps) are proven by
// e2e.livemig.disk_copy.
#include "utsushi/livemig/disk_copy.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "test_support.h"
#include "utsushi/livemig/disk_hash.h"

using namespace utsushi;
using namespace utsushi::livemig;

namespace {

constexpr std::uint64_t G = k_disk_hash_granule;
constexpr std::uint64_t k_size = 64 * G;

// qemu-nbd serving `file` (raw, writable) as export "disk" on a socket in `dir`;
// killed on destruction.
class QemuNbd {
 public:
  QemuNbd(const test::TempDir& dir, const std::string& file)
      : m_socket(dir.file("nbd.sock")), m_pidfile(dir.file("nbd.pid")) {
    std::string cmd = "qemu-nbd -f raw -x disk -e 4 --socket=" + m_socket + " --persistent --fork --pid-file=" +
                      m_pidfile + " " + file;
    m_ok = test::sh(cmd) == 0;
  }
  ~QemuNbd() { test::stop_daemon(m_pidfile); }
  bool ok() const { return m_ok; }
  const std::string& socket() const { return m_socket; }

 private:
  std::string m_socket;
  std::string m_pidfile;
  bool m_ok = false;
};

std::vector<DiskBatch> batches_of(NbdClient& c, std::span<const DiskRange> ranges, BatchLimits limits) {
  std::vector<DiskBatch> out;
  auto r = read_batches(c, 0, ranges, limits, [&](DiskBatch&& b) -> Result<void> {
    out.push_back(std::move(b));
    return {};
  });
  REQUIRE(r);
  return out;
}

}  // namespace

TEST_CASE("livemig NbdClient + read_batches/write_batch through qemu-nbd", "[livemig][disk_copy][nbd]") {
  if (!test::have("qemu-nbd")) {
    FAIL("qemu-nbd is not installed (scripts/setup installs qemu-utils)");
  }
  test::TempDir dir;
  std::string file = dir.file("disk.raw");
  test::make_sparse_file(file, k_size);
  auto a = test::pattern(3 * G, 1);
  std::fill(a.begin() + G, a.begin() + 2 * G, 0);  // its middle granule is all zeros
  test::write_at(file, 4 * G, a);
  auto b = test::pattern(1000, 2);
  test::write_at(file, 20 * G + 24, b);
  QemuNbd server(dir, file);
  REQUIRE(server.ok());

  auto c = NbdClient::connect(server.socket(), "disk", {k_context_allocation});
  REQUIRE(c);
  CHECK(c->size() == k_size);
  CHECK_FALSE(c->read_only());

  SECTION("extents cover the export without gaps, data where the file has some") {
    auto ex = c->extents(k_context_allocation);
    REQUIRE(ex);
    REQUIRE_FALSE(ex->empty());
    std::uint64_t at = 0;
    for (const auto& e : *ex) {
      CHECK(e.offset == at);
      at += e.length;
    }
    CHECK(at == k_size);
    auto first = c->extents(k_context_allocation, 4 * G, 1);
    REQUIRE(first);
    REQUIRE(first->size() == 1);
    CHECK(first->front() == NbdExtent{4 * G, 1, 0});
  }
  SECTION("batches within their limits, cut on granules, zero granules as zero ranges") {
    std::vector<DiskRange> ranges = {{4 * G, 3 * G, DiskRangeKind::data},
                                     {10 * G, 5 * G, DiskRangeKind::zero},
                                     {20 * G, G + 4096, DiskRangeKind::data}};
    auto got = batches_of(*c, ranges, {G, 4096});
    // Zero ranges take no data room: 4G data, 5G zero | 6G data, 10G..15G zero | 20G data, 21G zero
    // (the file holds nothing past 20G + 1024).
    REQUIRE(got.size() == 3);
    CHECK(got[0].ranges == std::vector<DiskRange>{{4 * G, G, DiskRangeKind::data}, {5 * G, G, DiskRangeKind::zero}});
    CHECK(got[1].ranges ==
          std::vector<DiskRange>{{6 * G, G, DiskRangeKind::data}, {10 * G, 5 * G, DiskRangeKind::zero}});
    CHECK(got[2].ranges ==
          std::vector<DiskRange>{{20 * G, G, DiskRangeKind::data}, {21 * G, 4096, DiskRangeKind::zero}});
    for (const auto& batch : got) {
      CHECK(batch.data.size() <= G);
    }
    CHECK(std::equal(a.begin(), a.begin() + G, got[0].data.begin()));
    // The same ranges with room for everything: one batch, ranges joined.
    auto one = batches_of(*c, ranges, {});
    REQUIRE(one.size() == 1);
    CHECK(one[0].ranges.size() == 6);
    DiskWriteHash h_many, h_one;
    for (const auto& batch : got) {
      h_many.add(batch);
    }
    h_one.add(one[0]);
    CHECK(h_many == h_one);
  }
  SECTION("a batch written reads back; zero ranges read as zeros") {
    DiskBatch w{0, {{30 * G + 7, 5000, DiskRangeKind::data}, {4 * G + 512, 1024, DiskRangeKind::zero}}, {}};
    w.data = test::pattern(5000, 3);
    REQUIRE(write_batch(*c, w));
    REQUIRE(c->flush());
    CHECK(test::read_at(file, 30 * G + 7, 5000) == w.data);
    CHECK(test::read_at(file, 4 * G + 512, 1024) == std::vector<std::uint8_t>(1024, 0));
    CHECK(test::read_at(file, 4 * G, 512) == std::vector<std::uint8_t>(a.begin(), a.begin() + 512));
  }
  SECTION("requests past the end are refused before anything is sent") {
    std::vector<std::uint8_t> buf(2);
    auto r = c->read(k_size - 1, buf);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::out_of_range);
    CHECK(c->zero(UINT64_MAX, 2).error().code() == Errc::out_of_range);
    CHECK(c->extents(k_context_allocation, k_size, 1).error().code() == Errc::out_of_range);
    CHECK(read_batches(*c, 0, std::vector<DiskRange>{{0, G, DiskRangeKind::data}}, {G - 1, 10},
                       [](DiskBatch&&) -> Result<void> { return {}; })
              .error()
              .code() == Errc::invalid_argument);
  }
  SECTION("a sink's error stops the reads and comes back") {
    int calls = 0;
    auto r = read_batches(*c, 0, std::vector<DiskRange>{{0, 8 * G, DiskRangeKind::data}}, {G, 10},
                          [&](DiskBatch&&) -> Result<void> {
                            ++calls;
                            return fail(Errc::unavailable, "link down");
                          });
    REQUIRE_FALSE(r);
    CHECK(r.error().message() == "link down");
    CHECK(calls == 1);
  }
  SECTION("a missing export, a context the server lacks") {
    auto none = NbdClient::connect(server.socket(), "nope");
    REQUIRE_FALSE(none);
    CHECK(none.error().message().find("nope") != std::string::npos);
    auto ctx = NbdClient::connect(server.socket(), "disk", {dirty_bitmap_context("b0")});
    REQUIRE_FALSE(ctx);
    CHECK(ctx.error().code() == Errc::not_supported);
  }
}
