#include <catch2/catch.hpp>

#include "utsushi/disk/guid.h"

using namespace utsushi;
using namespace utsushi::disk;

TEST_CASE("disk::Guid text round trip and rejects", "[disk][guid]") {
  auto g = parse_guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
  REQUIRE(g);
  CHECK(g->text() == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
  CHECK_FALSE(g->is_nil());
  CHECK(Guid{}.is_nil());
  for (const char* bad : {"", "c12a7328f81f11d2ba4b00a0c93ec93b", "c12a7328-f81f-11d2-ba4b-00a0c93ec93", "g12a7328-f81f-11d2-ba4b-00a0c93ec93b",
                          "c12a7328-f81f-11d2-ba4b_00a0c93ec93b", "c12a7328-f81f-11d2-ba4b-00a0c93ec93bb"}) {
    auto r = parse_guid(bad);
    CHECK_FALSE(r);
    if (!r) {
      CHECK(r.error().code() == Errc::invalid_argument);
    }
  }
}

TEST_CASE("disk::Guid byte orders: GPT mixed-endian and big-endian", "[disk][guid]") {
  // The EFI System Partition type as stored on disk (UEFI 2.10 table 5-7 and Appendix A).
  const std::uint8_t stored[16] = {0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11,
                                   0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B};
  Guid g = guid_from_mixed_endian(std::span<const std::uint8_t, 16>(stored));
  CHECK(g.text() == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
  std::uint8_t back[16] = {};
  guid_to_mixed_endian(g, std::span<std::uint8_t, 16>(back));
  CHECK(std::equal(std::begin(back), std::end(back), std::begin(stored)));
  // Big-endian (ext4, XFS, swap): the bytes in text order.
  CHECK(guid_from_big_endian(std::span<const std::uint8_t, 16>(stored)).text() ==
        "28732ac1-1ff8-d211-ba4b-00a0c93ec93b");
}
