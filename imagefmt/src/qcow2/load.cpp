#include "load.h"

#include <algorithm>

namespace utsushi::imagefmt::qcow2 {

namespace {
constexpr std::uint64_t k_max_cluster0 = 1u << 21;
constexpr std::uint64_t k_max_snapshot_table = 64u << 20;
constexpr std::uint64_t k_first_snapshot_read = 64u << 10;
}  // namespace

Result<HeaderBlock> load_header(const ReadAt& read, std::uint64_t file_size, const std::string& name,
                                TableBounds bounds) {
  HeaderBlock b;
  b.cluster0.resize(static_cast<std::size_t>(std::min(file_size, k_max_cluster0)));
  UTSUSHI_TRY(read(b.cluster0, 0));
  b.header = UTSUSHI_TRY_CTX(decode_header(b.cluster0, file_size, bounds), name);
  b.extensions = UTSUSHI_TRY_CTX(decode_extensions(b.header, b.cluster0), name);
  return b;
}

Result<std::vector<Snapshot>> load_snapshots(const ReadAt& read, const Header& h, std::uint64_t file_size,
                                             const std::string& name, std::uint64_t& consumed) {
  if (h.snapshots_offset >= file_size) {
    return fail(Errc::corruption, name + ": qcow2: snapshot table past the end of the file");
  }
  const std::uint64_t avail = std::min(file_size - h.snapshots_offset, k_max_snapshot_table);
  std::uint64_t want = std::min(avail, k_first_snapshot_read);
  for (;;) {
    std::vector<std::uint8_t> table(static_cast<std::size_t>(want));
    UTSUSHI_TRY(read(table, h.snapshots_offset));
    auto snaps = decode_snapshots(table, h.nb_snapshots, consumed);
    if (snaps || want == avail) {
      if (!snaps) {
        return std::unexpected(std::move(snaps).error().with_context(name));
      }
      return snaps;
    }
    want = std::min(avail, want * 8);
  }
}

}  // namespace utsushi::imagefmt::qcow2
