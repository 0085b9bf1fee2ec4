#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>

#include "utsushi/livemig/page_store.h"

using namespace utsushi::livemig;

namespace {

bool all_zero(const std::uint8_t* p) {
  return std::all_of(p, p + 4096, [](std::uint8_t b) { return b == 0; });
}

}  // namespace

TEST_CASE("livemig::PageStore takes prefaulted memory when it holds enough, zero-filled either way",
          "[livemig][page_store]") {
  prefault_page_memory(6u << 20);  // rounded to 6 MiB: room for the first store only
  for (int round = 0; round < 2; ++round) {
    PageStore store;
    REQUIRE(store.reset({{"pc.ram", 4u << 20}, {"vga.vram", 1u << 20}}));
    CHECK(store.total_bytes() == (5u << 20));
    for (std::uint32_t b = 0; b < 2; ++b) {
      const std::uint64_t pages = store.blocks()[b].pages();
      for (std::uint64_t p = 0; p < pages; p += 97) {
        CHECK(store.state(b, p) == SlotState::unsent);
        CHECK(all_zero(store.page(b, p)));
        std::memset(store.page(b, p), 0x5a, 4096);  // every page writable
      }
    }
  }
}

TEST_CASE("livemig::PageStore::clear zeroes a written slot and leaves an unwritten one alone",
          "[livemig][page_store]") {
  PageStore store;
  REQUIRE(store.reset({{"pc.ram", 16 * 4096}}));
  std::memset(store.page(0, 3), 0x77, 4096);
  store.set_state(0, 3, SlotState::data);
  store.clear(0, 3);
  CHECK(store.state(0, 3) == SlotState::zero);
  CHECK(all_zero(store.page(0, 3)));
  store.clear(0, 5);  // never written
  CHECK(store.state(0, 5) == SlotState::zero);
  CHECK(all_zero(store.page(0, 5)));
}
