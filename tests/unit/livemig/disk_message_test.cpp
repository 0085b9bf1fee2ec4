// disk_message.h: the disk data message round-trips (raw and zstd), and
// decoding refuses hostile input: every truncation, ranges past the disk's
// size, offset + length overflow, lengths that do not add up, unknown kinds,
// codecs and reserved bits, a disk id outside the session's list, copy ranges
// off their blocks or writing more than a message may.
#include "utsushi/livemig/disk_message.h"

#include <catch2/catch.hpp>
#include <memory>
#include <random>
#include <vector>

#include "test_support.h"

using namespace utsushi;
using namespace utsushi::livemig;

namespace {

struct Zstd {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> c{ZSTD_createCCtx(), ZSTD_freeCCtx};
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> d{ZSTD_createDCtx(), ZSTD_freeDCtx};
};

constexpr std::uint64_t k_size = 64u << 20;
const std::vector<std::uint64_t> k_sizes = {k_size, 1u << 20};

DiskBatch sample(std::vector<std::uint8_t> data_a, std::vector<std::uint8_t> data_b) {
  DiskBatch b;
  b.disk = 0;
  b.ranges = {{4096, data_a.size(), DiskRangeKind::data},
              {1u << 20, 8u << 20, DiskRangeKind::zero},
              {k_size - data_b.size(), data_b.size(), DiskRangeKind::data}};
  b.data = data_a;
  b.data.insert(b.data.end(), data_b.begin(), data_b.end());
  return b;
}

// Bytes zstd cannot shrink (a fixed seed: the same every run).
std::vector<std::uint8_t> noise(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) {
    b = static_cast<std::uint8_t>(gen());
  }
  return v;
}

Bytes encode(const DiskBatch& b, ZSTD_CCtx* c) {
  Bytes out;
  REQUIRE(encode_disk_batch(b, c, out));
  return out;
}

// The range table entry `i` of an encoded message.
std::uint8_t* entry(Bytes& m, std::size_t i) { return m.data() + k_disk_message_header + i * k_disk_range_entry; }

}  // namespace

TEST_CASE("livemig disk message: round trip, raw and zstd", "[livemig][disk_message]") {
  Zstd z;
  SECTION("compressible data travels compressed and decodes to the same batch") {
    DiskBatch b = sample(std::vector<std::uint8_t>(65536, 0x5a), std::vector<std::uint8_t>(4096, 0x11));
    Bytes m = encode(b, z.c.get());
    CHECK(m[disk_offset::codec] == static_cast<std::uint8_t>(DiskCodec::zstd));
    CHECK(m.size() < k_disk_message_header + 3 * k_disk_range_entry + b.data.size());
    auto d = decode_disk_batch(m, k_sizes, z.d.get());
    REQUIRE(d);
    CHECK(d->disk == 0);
    CHECK(d->ranges == b.ranges);
    CHECK(d->data == b.data);
    // The same context decodes a second message (its session is reset).
    auto again = decode_disk_batch(m, k_sizes, z.d.get());
    REQUIRE(again);
    CHECK(again->data == b.data);
  }
  SECTION("incompressible data, or no compressor, travels raw") {
    DiskBatch b = sample(noise(8192, 7), noise(512, 8));
    for (ZSTD_CCtx* c : {z.c.get(), static_cast<ZSTD_CCtx*>(nullptr)}) {
      Bytes m = encode(b, c);
      CHECK(m[disk_offset::codec] == static_cast<std::uint8_t>(DiskCodec::raw));
      CHECK(m.size() == k_disk_message_header + 3 * k_disk_range_entry + b.data.size());
      auto d = decode_disk_batch(m, k_sizes, nullptr);
      REQUIRE(d);
      CHECK(d->data == b.data);
    }
  }
  SECTION("zero ranges only: no data at all") {
    DiskBatch b{1, {{0, 1u << 20, DiskRangeKind::zero}}, {}};
    Bytes m = encode(b, z.c.get());
    CHECK(m.size() == k_disk_message_header + k_disk_range_entry);
    auto d = decode_disk_batch(m, k_sizes, z.d.get());
    REQUIRE(d);
    CHECK(d->disk == 1);
    CHECK(d->ranges == b.ranges);
  }
}

TEST_CASE("livemig disk message: the encoder refuses batches outside its limits", "[livemig][disk_message]") {
  Bytes out;
  auto refused = [&](const DiskBatch& b) {
    auto r = encode_disk_batch(b, nullptr, out);
    return !r && r.error().code() == Errc::invalid_argument;
  };
  CHECK(refused(DiskBatch{0, {}, {}}));
  CHECK(refused(DiskBatch{0, {{0, 0, DiskRangeKind::zero}}, {}}));
  CHECK(refused(DiskBatch{0, {{UINT64_MAX - 10, 100, DiskRangeKind::zero}}, {}}));
  CHECK(refused(DiskBatch{0, {{0, 10, DiskRangeKind::data}}, Bytes(9)}));
  CHECK(refused(DiskBatch{0, {{0, 10, static_cast<DiskRangeKind>(4)}}, {}}));
  CHECK(refused(DiskBatch{0, {{0, 10, DiskRangeKind::copy}}, Bytes(16)}));          // not whole blocks
  CHECK(refused(DiskBatch{0, {{100, 4096, DiskRangeKind::copy}}, Bytes(16)}));      // not on a sector
  CHECK(refused(DiskBatch{0, {{0, 8192, DiskRangeKind::copy}}, Bytes(16)}));        // one hash for two blocks
  CHECK(refused(DiskBatch{0, {{0, k_max_disk_data + 4096ull, DiskRangeKind::copy}},  // writes too much
                          Bytes((k_max_disk_data / 4096 + 1) * k_disk_copy_hash)}));
  CHECK(refused(DiskBatch{0, {{0, k_max_disk_data + 1ull, DiskRangeKind::data}}, Bytes(k_max_disk_data + 1ull)}));
  CHECK(out.empty());
}

TEST_CASE("livemig disk message: hostile input is corruption", "[livemig][disk_message]") {
  Zstd z;
  DiskBatch b = sample(std::vector<std::uint8_t>(65536, 0x5a), test::pattern(4096, 3));
  Bytes good = encode(b, z.c.get());
  REQUIRE(good[disk_offset::codec] == static_cast<std::uint8_t>(DiskCodec::zstd));
  Bytes raw = encode(b, nullptr);
  auto corrupt = [&](const Bytes& m) {
    auto r = decode_disk_batch(m, k_sizes, z.d.get());
    return !r && r.error().code() == Errc::corruption;
  };

  SECTION("every truncation, and a trailing byte") {
    for (const Bytes* m : {&good, &raw}) {
      for (std::size_t n = 0; n < m->size(); ++n) {
        INFO("truncated to " << n);
        REQUIRE(corrupt(Bytes(m->begin(), m->begin() + static_cast<std::ptrdiff_t>(n))));
      }
      Bytes longer = *m;
      longer.push_back(0);
      CHECK(corrupt(longer));
    }
  }
  SECTION("a range past the disk's size, or one whose end overflows") {
    Bytes m = raw;
    store_be64(entry(m, 2) + disk_offset::range_offset, k_size - 4095);
    CHECK(corrupt(m));
    m = raw;
    store_be64(entry(m, 1) + disk_offset::range_length, k_size);  // 1 MiB + 64 MiB > 64 MiB
    CHECK(corrupt(m));
    m = raw;
    store_be64(entry(m, 1) + disk_offset::range_offset, UINT64_MAX - 100);
    CHECK(corrupt(m));
    m = raw;
    store_be64(entry(m, 1) + disk_offset::range_length, UINT64_MAX);
    CHECK(corrupt(m));
    m = raw;
    store_be64(entry(m, 1) + disk_offset::range_length, 0);
    CHECK(corrupt(m));
    // The same message fits the larger disk but not disk 1 (1 MiB).
    m = raw;
    store_be32(m.data() + disk_offset::disk, 1);
    CHECK(corrupt(m));
  }
  SECTION("lengths that do not add up: data ranges, data length, data lengths that overflow") {
    Bytes m = raw;
    store_be32(m.data() + disk_offset::data_len, static_cast<std::uint32_t>(b.data.size() - 1));
    CHECK(corrupt(m));
    m = good;
    store_be32(m.data() + disk_offset::data_len, static_cast<std::uint32_t>(b.data.size() + 1));
    CHECK(corrupt(m));
    m = raw;  // a zero range turned data: the table claims 8 MiB more data
    entry(m, 1)[disk_offset::range_kind] = static_cast<std::uint8_t>(DiskRangeKind::data);
    CHECK(corrupt(m));
    m = raw;
    store_be32(m.data() + disk_offset::data_len, k_max_disk_data + 1);
    CHECK(corrupt(m));
  }
  SECTION("counts: none, more than the limit, more than the payload holds") {
    Bytes m = raw;
    store_be32(m.data() + disk_offset::count, 0);
    CHECK(corrupt(m));
    store_be32(m.data() + disk_offset::count, k_max_disk_ranges + 1);
    CHECK(corrupt(m));
    store_be32(m.data() + disk_offset::count, UINT32_MAX);
    CHECK(corrupt(m));
    store_be32(m.data() + disk_offset::count, 4);
    CHECK(corrupt(m));
  }
  SECTION("unknown disk, kind, codec; reserved bytes set") {
    Bytes m = raw;
    store_be32(m.data() + disk_offset::disk, 2);
    CHECK(corrupt(m));
    m = raw;
    entry(m, 0)[disk_offset::range_kind] = 0;
    CHECK(corrupt(m));
    m = raw;
    m[disk_offset::codec] = 2;
    CHECK(corrupt(m));
    for (std::size_t i = 0; i < 3; ++i) {
      m = raw;
      m[disk_offset::reserved + i] = 1;
      CHECK(corrupt(m));
    }
    for (std::size_t i = disk_offset::range_reserved; i < k_disk_range_entry; ++i) {
      m = raw;
      entry(m, 2)[i] = 0x80;
      CHECK(corrupt(m));
    }
  }
  SECTION("a damaged zstd frame, or raw bytes labelled zstd") {
    Bytes m = good;
    m.back() ^= 0xff;
    CHECK(corrupt(m));
    m = raw;
    m[disk_offset::codec] = static_cast<std::uint8_t>(DiskCodec::zstd);
    CHECK(corrupt(m));
  }
}

TEST_CASE("livemig disk message: copy ranges carry a hash per block", "[livemig][disk_message]") {
  Zstd z;
  DiskBatch b;
  b.ranges = {{0, 3 * 4096, DiskRangeKind::copy}, {3 * 4096, 100, DiskRangeKind::data},
              {(1u << 20) + 1536, 4096, DiskRangeKind::copy}};  // a copy may start at any sector
  b.data = test::pattern(3 * k_disk_copy_hash, 1);
  auto d = test::pattern(100, 2);
  b.data.insert(b.data.end(), d.begin(), d.end());
  auto h = test::pattern(k_disk_copy_hash, 3);
  b.data.insert(b.data.end(), h.begin(), h.end());
  for (ZSTD_CCtx* c : {z.c.get(), static_cast<ZSTD_CCtx*>(nullptr)}) {
    Bytes m = encode(b, c);
    auto back = decode_disk_batch(m, k_sizes, z.d.get());
    REQUIRE(back);
    CHECK(back->ranges == b.ranges);
    CHECK(back->data == b.data);
  }
  Bytes raw = encode(b, nullptr);
  auto corrupt = [&](const Bytes& m) {
    auto r = decode_disk_batch(m, k_sizes, z.d.get());
    return !r && r.error().code() == Errc::corruption;
  };
  Bytes m = raw;
  store_be64(entry(m, 2) + disk_offset::range_offset, (1u << 20) + 1000);  // off a sector
  CHECK(corrupt(m));
  m = raw;
  store_be64(entry(m, 0) + disk_offset::range_length, 3 * 4096 - 1);  // part of a block
  CHECK(corrupt(m));
  m = raw;
  store_be64(entry(m, 0) + disk_offset::range_length, 4 * 4096);  // one block more than hashes
  CHECK(corrupt(m));
  m = raw;  // a data range turned copy: 100 bytes are not whole blocks
  entry(m, 1)[disk_offset::range_kind] = static_cast<std::uint8_t>(DiskRangeKind::copy);
  CHECK(corrupt(m));
  // 8 hashes that would write 64 MiB: past k_max_disk_data, whatever the data length says.
  DiskBatch big{0, {{0, 4096, DiskRangeKind::copy}}, Bytes(k_disk_copy_hash, 7)};
  m = encode(big, nullptr);
  store_be64(entry(m, 0) + disk_offset::range_length, 64u << 20);
  store_be32(m.data() + disk_offset::data_len, (64u << 20) / 4096 * k_disk_copy_hash);
  m.resize(k_disk_message_header + k_disk_range_entry + (64u << 20) / 4096 * k_disk_copy_hash, 0);
  CHECK(corrupt(m));
}

TEST_CASE("livemig range_inside: bounds and overflow", "[livemig][disk_message]") {
  CHECK(range_inside(0, 1, 1));
  CHECK(range_inside(10, 90, 100));
  CHECK_FALSE(range_inside(10, 91, 100));
  CHECK_FALSE(range_inside(0, 0, 100));
  CHECK_FALSE(range_inside(101, 1, 100));
  CHECK_FALSE(range_inside(UINT64_MAX, 2, UINT64_MAX));
  CHECK(range_inside(UINT64_MAX - 1, 1, UINT64_MAX));
}
