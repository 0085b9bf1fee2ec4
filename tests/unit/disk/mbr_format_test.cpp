// Pure MBR encoders and decoders (UEFI 2.10 section 5.2.1).
#include <catch2/catch.hpp>

#include "utsushi/disk/mbr_format.h"

using namespace utsushi;
using namespace utsushi::disk;

TEST_CASE("disk::mbr entries round trip, boot code untouched", "[disk][mbr]") {
  std::vector<std::uint8_t> sector(512, 0xCC);  // boot code and signature area as a boot loader left them
  mbr::Entries e{};
  e[0] = {0x80, 0x83, 2048, 16384};
  e[1] = {0, 0x05, 18432, 0xFFFFFFFF - 18432};
  e[3] = {0, 0x07, 0xFFFFFFF0, 0x10};
  mbr::encode_entries(e, sector);
  CHECK(std::all_of(sector.begin(), sector.begin() + 446, [](std::uint8_t b) { return b == 0xCC; }));
  CHECK(sector[510] == 0x55);
  CHECK(sector[511] == 0xAA);
  auto back = mbr::decode_entries(sector);
  REQUIRE(back);
  CHECK(*back == e);
  CHECK(mbr::is_extended_type((*back)[1].type));
  CHECK((*back)[2].empty());
}

TEST_CASE("disk::mbr CHS fields", "[disk][mbr]") {
  CHECK(mbr::chs_of(0) == std::array<std::uint8_t, 3>{0, 1, 0});
  CHECK(mbr::chs_of(1) == std::array<std::uint8_t, 3>{0, 2, 0});  // the protective MBR's start, 0x000200
  CHECK(mbr::chs_of(2048) == std::array<std::uint8_t, 3>{32, 33, 0});  // as fdisk writes it
  CHECK(mbr::chs_of(255ull * 63 * 1024) == std::array<std::uint8_t, 3>{0xFE, 0xFF, 0xFF});
  // Cylinder 1023: bits 8-9 in the sector byte.
  auto c = mbr::chs_of(255ull * 63 * 1023);
  CHECK(c[1] == (1 | 0xC0));
  CHECK(c[2] == 0xFF);
}

TEST_CASE("disk::mbr decoder refuses bad signatures and status bytes", "[disk][mbr]") {
  std::vector<std::uint8_t> sector(512, 0);
  CHECK(mbr::decode_entries(sector).error().code() == Errc::corruption);
  sector[510] = 0x55;
  sector[511] = 0xAA;
  CHECK(mbr::decode_entries(sector));
  sector[446] = 0x81;
  CHECK(mbr::decode_entries(sector).error().code() == Errc::corruption);
  CHECK(mbr::decode_entries(std::span<const std::uint8_t>(sector).first(511)).error().code() == Errc::corruption);
}
