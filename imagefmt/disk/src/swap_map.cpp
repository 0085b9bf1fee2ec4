// Linux swap: only the header page is meaningful once the system is down.
// Layout: include/linux/swap.h `union swap_header` (bootbits[1024], version,
// last_page, nr_badpages, sws_uuid[16], sws_volume[16], ...), the magic
// "SWAPSPACE2" in the last 10 bytes of the first page. Hibernation images
// written into swap ("S1SUSPEND", "S2SUSPEND", "ULSUSPEND", "LINHIB0001")
// hold a suspended system: those are copied in full.
#include "decode_util.h"
#include "utsushi/disk/fs_map.h"
#include "utsushi/disk/guid.h"

namespace utsushi::disk {
namespace {

constexpr std::size_t k_uuid_offset = 1024 + 12;   // after bootbits, version, last_page, nr_badpages
constexpr std::size_t k_label_offset = 1024 + 28;  // sws_volume[16]
static_assert(k_label_offset + 16 <= 4096 - 10, "UUID and label lie before the magic of the smallest page");

}  // namespace

[[nodiscard]] Result<FsUsage> map_swap(Volume& volume) {
  for (std::size_t page : {4096u, 8192u, 16384u, 65536u}) {
    if (page > volume.size()) {
      break;
    }
    auto b = UTSUSHI_TRY(volume.read(0, page, "swap header"));
    std::span<const std::uint8_t> s(b);
    if (bytes_equal(s, page - 10, "SWAPSPACE2") || bytes_equal(s, page - 10, "SWAP-SPACE")) {
      FsUsage u;
      u.filesystem = "swap";
      u.uuid = guid_from_big_endian(s.subspan(k_uuid_offset).first<16>()).text();
      u.label = text_field(s, k_label_offset, 16);
      u.used.add(0, page);  // the header: UUID and label kept, the rest is free
      u.fs_used_bytes = page;
      return u;
    }
    if (bytes_equal(s, page - 10, "S1SUSPEND\0") || bytes_equal(s, page - 10, "S2SUSPEND\0") ||
        bytes_equal(s, page - 10, "ULSUSPEND\0") || bytes_equal(s, page - 10, "LINHIB0001")) {
      return fail(Errc::failed_precondition, "swap holds a hibernation image");
    }
  }
  return fail(Errc::corruption, "no swap signature found");
}

}  // namespace utsushi::disk
