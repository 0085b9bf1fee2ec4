// VMDK: header codec, descriptor recognition, the streamOptimized writer and
// the reader, with qemu-img as the oracle.
#include "utsushi/imagefmt/vmdk.h"

#include <fcntl.h>

#include <catch2/catch.hpp>

#include "oracle.h"
#include "test_support.h"
#include "utsushi/common/atomic_file.h"
#include "utsushi/imagefmt/registry.h"

using namespace utsushi;
using namespace utsushi::imagefmt;
using test::read_all;
using test::sh;

namespace {

// A raw source: data, a hole, a grain of zeros written out, data at the end.
std::string make_source(const test::TempDir& dir, std::uint64_t size) {
  std::string raw = dir.file("src.raw");
  test::make_sparse_file(raw, size);
  test::write_at(raw, 0, test::pattern(300000, 1));
  test::write_at(raw, 1 << 20, std::vector<std::uint8_t>(65536, 0));
  test::write_at(raw, size - 5000, test::pattern(5000, 2));
  return raw;
}

Result<VmdkWriteStats> write_vmdk(const std::string& raw, const std::string& out) {
  auto src = UTSUSHI_TRY(open_image(raw, OpenOptions{"raw", Access::read_only}));
  auto file = UTSUSHI_TRY(AtomicFile::create(out));
  VmdkWriteOptions o;
  o.threads = 3;
  o.extent_name = "out.vmdk";
  auto stats = UTSUSHI_TRY(write_vmdk_stream_optimized(*src, file.fd(), out, o));
  UTSUSHI_TRY(file.commit());
  return stats;
}

}  // namespace

TEST_CASE("vmdk::decode_header: round trip and refusals", "[vmdk]") {
  vmdk::Header h;
  h.capacity = 123456;
  h.gd_offset = 21;
  h.overhead = 128;
  std::vector<std::uint8_t> sector(vmdk::k_sector);
  vmdk::encode_header(h, sector);
  auto back = vmdk::decode_header(sector);
  REQUIRE(back);
  CHECK(back->capacity == 123456);
  CHECK(back->gd_offset == 21);
  CHECK(back->flags == h.flags);
  CHECK(back->num_gtes_per_gt == 512);

  auto refused = [&](std::size_t offset, std::uint8_t value, Errc want) {
    auto bad = sector;
    bad[offset] = value;
    auto r = vmdk::decode_header(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == want);
  };
  refused(0, 'X', Errc::corruption);       // magic
  refused(4, 9, Errc::not_supported);      // version 9
  refused(20, 3, Errc::corruption);        // grain size 3 sectors: not a power of two
  refused(73, 'x', Errc::corruption);      // newline detector damaged
  refused(10, 0x80, Errc::not_supported);  // unknown incompatible flag
  CHECK_FALSE(vmdk::decode_header(std::span(sector).first(100)));
}

TEST_CASE("vmdk: descriptor files are recognised at any size and name their createType", "[vmdk]") {
  std::string small = "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\n";
  auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(small.data()), small.size());
  CHECK(vmdk::is_descriptor(bytes));
  CHECK_FALSE(vmdk::is_descriptor(bytes.first(10)));
  CHECK(vmdk::descriptor_create_type(small) == "monolithicFlat");
  CHECK(vmdk::descriptor_create_type("createType = \"vmfs\"\r\n") == "vmfs");
  CHECK(vmdk::descriptor_create_type("version=1\n").empty());
  CHECK(vmdk::descriptor_create_type("createType=\"a\x01"
                                     "b\"") == "a?b");

  test::TempDir dir;
  std::string path = dir.file("d.vmdk");
  test::make_sparse_file(path, small.size());
  test::write_at(path, 0, std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  auto r = open_image(path);  // probed as vmdk
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::not_supported);
  CHECK_THAT(r.error().message(), Catch::Contains("\"monolithicFlat\""));
}

TEST_CASE("vmdk writer: streamOptimized output reads back, qemu-img agrees", "[vmdk][qemu-img]") {
  test::TempDir dir;
  // Not a multiple of the grain (64 KiB) nor of a sector: capacity rounds up.
  const std::uint64_t size = (5u << 20) + 1000;
  std::string raw = make_source(dir, size), out = dir.file("out.vmdk");
  auto stats = write_vmdk(raw, out);
  REQUIRE(stats);
  CHECK(stats->bytes_read > 0);
  CHECK(stats->bytes_zero >= 65536);  // the written-out zero grain is not stored
  CHECK(sh("qemu-img check -q " + out) == 0);
  std::string padded = dir.file("padded.raw");
  REQUIRE(sh("cp " + raw + " " + padded + " && truncate -s %512 " + padded) == 0);
  CHECK(sh("qemu-img compare -q -f raw " + padded + " -F vmdk " + out) == 0);

  auto back = open_image(out);
  REQUIRE(back);
  CHECK((*back)->format_name() == "vmdk");
  CHECK((*back)->size() == (size + 511) / 512 * 512);
  auto src = open_image(raw, OpenOptions{"raw", Access::read_only});
  REQUIRE(src);
  auto got = read_all(**back);
  auto want = read_all(**src);
  want.resize(got.size(), 0);
  CHECK(got == want);
  auto extents = (*back)->extents();
  REQUIRE(extents);
  bool hole_at_1m = false;
  for (const Extent& e : *extents) {
    hole_at_1m |= e.type == ExtentType::hole && e.offset <= (1u << 20) && e.offset + e.length >= (1u << 20) + 65536;
  }
  CHECK(hole_at_1m);
}

TEST_CASE("vmdk reader: qemu-img's streamOptimized and monolithicSparse images read byte for byte",
          "[vmdk][qemu-img]") {
  test::TempDir dir;
  // Not a grain multiple: qemu-img stores only the rest of the disk in the last grain.
  std::string raw = make_source(dir, (3u << 20) + 1024);
  auto src = open_image(raw, OpenOptions{"raw", Access::read_only});
  REQUIRE(src);
  const auto want = read_all(**src);
  for (std::string sub : {"streamOptimized", "monolithicSparse"}) {
    std::string out = dir.file(sub + ".vmdk");
    REQUIRE(sh("qemu-img convert -O vmdk -o subformat=" + sub + " " + raw + " " + out) == 0);
    auto back = open_image(out);
    REQUIRE(back);
    CHECK(read_all(**back) == want);
  }
}

TEST_CASE("vmdk reader: damaged grains and tables fail as corruption", "[vmdk]") {
  test::TempDir dir;
  std::string raw = make_source(dir, 2u << 20), out = dir.file("out.vmdk");
  REQUIRE(write_vmdk(raw, out));
  auto head = test::read_at(out, 0, 512);
  auto h = vmdk::decode_header(head);
  REQUIRE(h);
  // The first grain's marker names another LBA.
  std::string bad_marker = dir.file("bad-marker.vmdk");
  REQUIRE(sh("cp " + out + " " + bad_marker) == 0);
  test::write_at(bad_marker, h->overhead * vmdk::k_sector, {7, 0, 0, 0, 0, 0, 0, 0});
  auto a = open_image(bad_marker);
  REQUIRE(a);
  std::vector<std::uint8_t> buf(4096);
  auto r = (*a)->pread(buf, 0);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::corruption);
  CHECK_THAT(r.error().message(), Catch::Contains("marker"));
  // The grain directory points past the end of the file.
  std::string bad_gd = dir.file("bad-gd.vmdk");
  REQUIRE(sh("cp " + out + " " + bad_gd) == 0);
  vmdk::Header moved = *h;
  moved.gd_offset = 1u << 30;
  std::vector<std::uint8_t> sector(vmdk::k_sector);
  vmdk::encode_header(moved, sector);
  test::write_at(bad_gd, 0, sector);
  auto b = open_image(bad_gd);
  REQUIRE_FALSE(b);
  CHECK(b.error().code() == Errc::corruption);
  // Opened for writing: refused, the writer makes new images.
  auto w = open_image(out, OpenOptions{"vmdk", Access::read_write});
  REQUIRE_FALSE(w);
  CHECK(w.error().code() == Errc::not_supported);
}
