// Pure GPT encoders and decoders (UEFI 2.10 chapter 5): round trips, CRCs,
// hostile geometry, names.
#include <catch2/catch.hpp>

#include "utsushi/common/endian.h"
#include "utsushi/disk/gpt_format.h"

using namespace utsushi;
using namespace utsushi::disk;

namespace {

gpt::Header sample_header() {
  gpt::Header h;
  h.my_lba = 1;
  h.alternate_lba = 131071;
  h.first_usable_lba = 34;
  h.last_usable_lba = 131038;
  h.disk_guid = *parse_guid("01234567-89ab-cdef-0123-456789abcdef");
  h.entries_lba = 2;
  h.entry_count = 128;
  h.entry_size = 128;
  h.entries_crc = 0xdeadbeef;
  return h;
}

}  // namespace

TEST_CASE("disk::gpt header round trip and CRC", "[disk][gpt]") {
  for (std::uint32_t ss : {512u, 4096u}) {
    auto bytes = gpt::encode_header(sample_header(), ss);
    REQUIRE(bytes.size() == ss);
    auto h = gpt::decode_header(bytes);
    REQUIRE(h);
    CHECK(*h == sample_header());
    // Any flipped byte inside the 92 header bytes breaks the CRC.
    for (std::size_t at : {std::size_t{9}, gpt::h_my_lba, gpt::h_disk_guid + 3, gpt::h_entries_crc}) {
      auto bad = bytes;
      bad[at] ^= 0x40;
      auto r = gpt::decode_header(bad);
      REQUIRE_FALSE(r);
      CHECK(r.error().code() == Errc::corruption);
    }
  }
  auto none = std::vector<std::uint8_t>(512, 0);
  CHECK(gpt::decode_header(none).error().code() == Errc::not_found);
}

TEST_CASE("disk::gpt header with hostile geometry is refused", "[disk][gpt]") {
  auto check_refused = [](gpt::Header h) {
    auto r = gpt::decode_header(gpt::encode_header(h, 512));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::corruption);
  };
  gpt::Header h = sample_header();
  h.entry_size = 100;  // below 128
  check_refused(h);
  h.entry_size = 192;  // not a power of two
  check_refused(h);
  h = sample_header();
  h.entry_count = 0xFFFFFFFF;  // a 512 GiB array
  check_refused(h);
  h = sample_header();
  h.first_usable_lba = h.last_usable_lba + 1;
  check_refused(h);
  // A header size beyond the sector.
  auto bytes = gpt::encode_header(sample_header(), 512);
  store_le32(bytes.data() + gpt::h_header_size, 600);
  CHECK(gpt::decode_header(bytes).error().code() == Errc::corruption);
}

TEST_CASE("disk::gpt entries round trip with UTF-8 names", "[disk][gpt]") {
  std::vector<gpt::Entry> entries(3);
  entries[0] = {*parse_guid("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"), *parse_guid("11111111-2222-3333-4444-555555555555"),
                2048, 18431, gpt::k_attr_legacy_bios_bootable | (1ull << 60), "EFI system"};
  entries[2] = {*parse_guid("0fc63daf-8483-4772-8e79-3d69d8477de4"), *parse_guid("66666666-2222-3333-4444-555555555555"),
                18432, 51199, 0, "r\u00e9sum\u00e9 \u2603 \U0001F600"};
  auto bytes = gpt::encode_entries(entries, 128, 128, 512);
  REQUIRE(bytes);
  CHECK(bytes->size() == 128 * 128);
  auto back = gpt::decode_entries(*bytes, 128, 128);
  REQUIRE(back);
  REQUIRE(back->size() == 128);
  CHECK((*back)[0] == entries[0]);
  CHECK_FALSE((*back)[1].used());
  CHECK((*back)[2] == entries[2]);
  // Larger entries (256 bytes) keep the same fields.
  auto wide = gpt::encode_entries(entries, 4, 256, 4096);
  REQUIRE(wide);
  CHECK(wide->size() == 4096);
  CHECK((*gpt::decode_entries(*wide, 4, 256))[2] == entries[2]);
}

TEST_CASE("disk::gpt names: limits and malformed input", "[disk][gpt]") {
  CHECK(gpt::encode_name(std::string(36, 'a')));
  CHECK(gpt::encode_name(std::string(37, 'a')).error().code() == Errc::invalid_argument);
  CHECK(gpt::encode_name(std::string(18, 'a') + std::string(9, 'x') + "\U0001F600\U0001F600\U0001F600\U0001F600\U0001F600")
            .error()
            .code() == Errc::invalid_argument);  // 27 + 10 code units
  CHECK(gpt::encode_name("\xC3").error().code() == Errc::invalid_argument);       // truncated sequence
  CHECK(gpt::encode_name("\xC0\xAF").error().code() == Errc::invalid_argument);   // overlong
  CHECK(gpt::encode_name("\xED\xA0\x80").error().code() == Errc::invalid_argument);  // a surrogate
  // An unpaired surrogate on disk becomes U+FFFD.
  std::vector<std::uint8_t> field(72, 0);
  store_le16(field.data(), 0xD800);
  store_le16(field.data() + 2, 'x');
  CHECK(gpt::decode_name(field) == "\uFFFDx");
}

TEST_CASE("disk::gpt entries: short arrays and reversed ranges are corrupt", "[disk][gpt]") {
  std::vector<std::uint8_t> bytes(128 * 4, 0);
  CHECK(gpt::decode_entries(bytes, 5, 128).error().code() == Errc::corruption);
  std::vector<gpt::Entry> e(1);
  e[0] = {*parse_guid("0fc63daf-8483-4772-8e79-3d69d8477de4"), {}, 100, 99, 0, ""};
  auto enc = gpt::encode_entries(e, 4, 128, 512);
  REQUIRE(enc);
  CHECK(gpt::decode_entries(*enc, 4, 128).error().code() == Errc::corruption);
  CHECK(gpt::encode_entries(std::vector<gpt::Entry>(5), 4, 128, 512).error().code() == Errc::invalid_argument);
}
