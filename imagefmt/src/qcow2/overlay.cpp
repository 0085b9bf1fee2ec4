// Empty qcow2 images: standalone, or overlays over a backing file (the base
// of linked clones). Layout, as QEMU's `qemu-img create [-b]` makes it:
// cluster 0 header (+ backing-format extension + backing file name),
// cluster 1 refcount table, cluster 2 refcount block, clusters 3.. the
// all-zero L1 table. Every one of these clusters has refcount 1 and nothing
// else is allocated, so `qemu-img check` finds it clean.
#include <filesystem>

#include "utsushi/common/atomic_file.h"
#include "utsushi/imagefmt/qcow2.h"

namespace utsushi::imagefmt {

using namespace qcow2;

namespace {

// Writes the empty image; `backing` empty: none.
Result<void> write_empty_qcow2(const std::string& path, std::uint64_t vsize, const std::string& backing,
                               const std::string& backing_format) {
  if (vsize > k_max_virtual_size) {
    return fail(Errc::invalid_argument, "qcow2: virtual size too large");
  }
  const std::uint32_t cb = 16;
  const std::uint64_t cs = 1ull << cb;
  std::uint64_t l1_entries = std::max<std::uint64_t>(1, l1_entries_for(vsize, cb, false));
  std::uint64_t l1_clusters = (l1_entries * 8 + cs - 1) / cs;
  std::uint64_t total_clusters = 3 + l1_clusters;
  if (total_clusters > cs * 8 / 16) {
    return fail(Errc::invalid_argument, "qcow2: virtual size too large for an empty image");
  }

  // Cluster 0: header, [backing format extension,] end of extensions[, name].
  std::vector<std::uint8_t> c0(static_cast<std::size_t>(cs), 0);
  std::size_t pos = k_qemu_header_length;
  Header h;
  if (!backing.empty()) {
    store_be32(c0.data() + pos, k_ext_backing_format);
    store_be32(c0.data() + pos + 4, static_cast<std::uint32_t>(backing_format.size()));
    std::copy(backing_format.begin(), backing_format.end(), c0.begin() + static_cast<std::ptrdiff_t>(pos + 8));
    pos += 8 + ((backing_format.size() + 7) & ~std::size_t{7});
  }
  pos += 8;  // end-of-extensions marker: 8 zero bytes
  if (!backing.empty()) {
    if (pos + backing.size() > cs) {
      return fail(Errc::invalid_argument, "qcow2: backing file name too long");
    }
    std::copy(backing.begin(), backing.end(), c0.begin() + static_cast<std::ptrdiff_t>(pos));
    h.backing_file_offset = pos;
    h.backing_file_size = static_cast<std::uint32_t>(backing.size());
  }
  h.cluster_bits = cb;
  h.size = vsize;
  h.l1_size = static_cast<std::uint32_t>(l1_entries);
  h.l1_table_offset = 3 * cs;
  h.refcount_table_offset = cs;
  h.refcount_table_clusters = 1;
  encode_header(h, c0);

  std::vector<std::uint8_t> reftable(static_cast<std::size_t>(cs), 0);
  store_be64(reftable.data(), 2 * cs);
  std::vector<std::uint8_t> refblock(static_cast<std::size_t>(cs), 0);
  for (std::uint64_t c = 0; c < total_clusters; ++c) {
    set_refcount(refblock, c, 4, 1);
  }
  std::vector<std::uint8_t> l1(static_cast<std::size_t>(l1_clusters * cs), 0);

  auto file = UTSUSHI_TRY(AtomicFile::create(path));
  UTSUSHI_TRY(pwrite_full(file.fd(), reftable, cs, path));
  UTSUSHI_TRY(pwrite_full(file.fd(), refblock, 2 * cs, path));
  UTSUSHI_TRY(pwrite_full(file.fd(), l1, 3 * cs, path));
  UTSUSHI_TRY(pwrite_full(file.fd(), c0, 0, path));
  return file.commit();
}

}  // namespace

Result<void> create_qcow2(const std::string& path, std::uint64_t size) {
  if (size == 0) {
    return fail(Errc::invalid_argument, "qcow2: an empty image needs a virtual size");
  }
  return write_empty_qcow2(path, size, "", "");
}

Result<void> create_qcow2_overlay(const std::string& path, const std::string& backing,
                                  const std::string& backing_format, std::optional<std::uint64_t> size) {
  if (backing.empty() || backing.size() > k_max_backing_name) {
    return fail(Errc::invalid_argument, "qcow2: backing file name must be 1 to 1023 bytes");
  }
  std::filesystem::path b(backing);
  std::string resolved =
      b.is_absolute() ? backing : (std::filesystem::path(path).parent_path() / b).string();
  auto base = UTSUSHI_TRY_CTX(open_image(resolved, OpenOptions{backing_format, Access::read_only}),
                              "backing file for " + path);
  return write_empty_qcow2(path, size.value_or(base->size()), backing, backing_format);
}

}  // namespace utsushi::imagefmt
