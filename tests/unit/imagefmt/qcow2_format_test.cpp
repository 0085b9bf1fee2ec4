// Pure qcow2 encode/decode: header round trip and validation, compressed
// descriptors (qcow2.txt table), refcount entries of every width.
#include <catch2/catch.hpp>

#include <cstring>

#include "utsushi/imagefmt/qcow2_format.h"

using namespace utsushi;
using namespace utsushi::imagefmt::qcow2;

namespace {

std::vector<std::uint8_t> valid_header_cluster() {
  Header h;
  h.cluster_bits = 16;
  h.size = 1ull << 30;
  h.l1_size = 2;
  h.l1_table_offset = 3 << 16;
  h.refcount_table_offset = 1 << 16;
  h.refcount_table_clusters = 1;
  std::vector<std::uint8_t> c0(65536, 0);
  encode_header(h, c0);
  return c0;
}

constexpr std::uint64_t k_file = 4 << 16;

}  // namespace

TEST_CASE("qcow2::decode_header round trip", "[qcow2]") {
  auto c0 = valid_header_cluster();
  auto h = decode_header(c0, k_file);
  REQUIRE(h);
  CHECK(h->version == 3);
  CHECK(h->cluster_size() == 65536);
  CHECK(h->size == 1ull << 30);
  CHECK(h->header_length == 112);
  CHECK(h->refcount_bits() == 16);
  CHECK(h->compression_type == CompressionType::zlib);
}

TEST_CASE("qcow2::decode_header rejects malformed headers", "[qcow2]") {
  auto c0 = valid_header_cluster();
  auto expect = [&](Errc code) {
    auto h = decode_header(c0, k_file);
    REQUIRE_FALSE(h);
    CHECK(h.error().code() == code);
  };
  SECTION("bad magic") { c0[0] = 'X'; expect(Errc::corruption); }
  SECTION("version 4") { store_be32(c0.data() + 4, 4); expect(Errc::not_supported); }
  SECTION("cluster_bits 8") { store_be32(c0.data() + 20, 8); expect(Errc::corruption); }
  SECTION("cluster_bits 22") { store_be32(c0.data() + 20, 22); expect(Errc::corruption); }
  SECTION("encrypted") { store_be32(c0.data() + 32, 2); expect(Errc::not_supported); }
  SECTION("external data file") { store_be64(c0.data() + 72, k_incompat_data_file); expect(Errc::not_supported); }
  SECTION("unknown incompatible bit") { store_be64(c0.data() + 72, 1ull << 40); expect(Errc::not_supported); }
  SECTION("zstd byte without bit 3") { c0[104] = 1; expect(Errc::corruption); }
  SECTION("bit 3 without zstd byte") { store_be64(c0.data() + 72, k_incompat_compression); expect(Errc::corruption); }
  SECTION("L1 too small for the size") { store_be32(c0.data() + 36, 1); expect(Errc::corruption); }
  SECTION("L1 past end of file") { store_be64(c0.data() + 40, 100ull << 16); expect(Errc::corruption); }
  SECTION("L1 misaligned") { store_be64(c0.data() + 40, (3 << 16) + 512); expect(Errc::corruption); }
  SECTION("L1 offset overflows") { store_be64(c0.data() + 40, ~0ull << 16); expect(Errc::corruption); }
  SECTION("huge L1") { store_be32(c0.data() + 36, 0x7fffffff); expect(Errc::corruption); }
  SECTION("refcount table past end") { store_be64(c0.data() + 48, 50ull << 16); expect(Errc::corruption); }
  SECTION("refcount table huge") { store_be32(c0.data() + 56, 1u << 30); expect(Errc::corruption); }
  SECTION("absurd virtual size") { store_be64(c0.data() + 24, ~0ull); expect(Errc::corruption); }
  SECTION("refcount order 7") { store_be32(c0.data() + 96, 7); expect(Errc::corruption); }
  SECTION("header_length huge") { store_be32(c0.data() + 100, 1u << 30); expect(Errc::corruption); }
  SECTION("backing name outside cluster 0") {
    store_be64(c0.data() + 8, 65530);
    store_be32(c0.data() + 16, 100);
    expect(Errc::corruption);
  }
  SECTION("too many snapshots") { store_be32(c0.data() + 60, 100000); expect(Errc::corruption); }
  SECTION("truncated file") {
    auto h = decode_header(std::span(c0).first(50), 50);
    CHECK_FALSE(h);
  }
}

TEST_CASE("qcow2::decode_extensions bounds", "[qcow2]") {
  auto c0 = valid_header_cluster();
  auto h = decode_header(c0, k_file);
  REQUIRE(h);
  store_be32(c0.data() + 112, k_ext_backing_format);
  store_be32(c0.data() + 116, 3);
  std::memcpy(c0.data() + 120, "raw", 3);
  auto ext = decode_extensions(*h, c0);
  REQUIRE(ext);
  CHECK(ext->backing_format == "raw");
  store_be32(c0.data() + 116, 0xfffffff0u);
  CHECK_FALSE(decode_extensions(*h, c0));
}

TEST_CASE("qcow2 compressed descriptor layout", "[qcow2]") {
  // qcow2.txt: x = 62 - (cluster_bits - 8).
  CHECK(compressed_layout(16).csize_shift == 54);
  CHECK(compressed_layout(9).csize_shift == 61);
  CHECK(compressed_layout(21).csize_mask == 8191);
  auto l = compressed_layout(16);
  std::uint64_t e = encode_compressed(1000, 700, l);
  CHECK((e & k_oflag_compressed) != 0);
  CHECK((e & k_oflag_copied) == 0);
  auto r = decode_compressed(e, l);
  CHECK(r.host_offset == 1000);
  // Sectors 1..3 hold bytes 1000..1699: 2 additional sectors, read to 2048.
  CHECK(r.max_bytes == 3 * 512 - (1000 % 512));
  CHECK(r.host_offset + r.max_bytes >= 1700);
}

TEST_CASE("qcow2 refcount entries of every width", "[qcow2]") {
  for (unsigned order = 0; order <= 6; ++order) {
    std::vector<std::uint8_t> block(512, 0);
    std::uint64_t max = order == 6 ? ~0ull : (1ull << (1u << order)) - 1;
    std::uint64_t entries = 512 * 8 / (1u << order);
    set_refcount(block, 0, order, 1);
    set_refcount(block, entries - 1, order, max);
    set_refcount(block, entries / 2, order, max > 1 ? 2 : 1);
    CHECK(get_refcount(block, 0, order) == 1);
    CHECK(get_refcount(block, entries - 1, order) == max);
    CHECK(get_refcount(block, entries / 2, order) == (max > 1 ? 2 : 1));
    CHECK(get_refcount(block, 1, order) == 0);
  }
  // 16-bit entries are big-endian: four refcounts of 1 = 0x0001000100010001.
  std::vector<std::uint8_t> b(8, 0);
  for (int i = 0; i < 4; ++i) {
    set_refcount(b, i, 4, 1);
  }
  CHECK(load_be64(b.data()) == 0x0001000100010001ull);
}
