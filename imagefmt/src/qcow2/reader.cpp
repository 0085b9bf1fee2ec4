// The qcow2 read driver (see qcow2.h for the contract).
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <unordered_map>

#include "codec.h"
#include "load.h"
#include "utsushi/common/log.h"
#include "utsushi/imagefmt/qcow2.h"

namespace utsushi::imagefmt {
namespace {

using namespace qcow2;

constexpr std::uint64_t k_l2_cache_bytes = 32u << 20;

using L2Table = std::vector<std::uint64_t>;  // host-endian entries (2 words each with extended L2)

// How one guest cluster (or subcluster) reads.
enum class Kind { unallocated, zero, normal, compressed };

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) {
    return p;
  }
  return buf;
}

class Qcow2Driver final : public BlockDriver {
 public:
  [[nodiscard]] static Result<std::unique_ptr<BlockDriver>> open(const std::string& path, int depth,
                                                                 std::set<std::string>& chain);

  std::string_view format_name() const override { return "qcow2"; }
  const std::string& description() const override { return m_path; }
  std::uint64_t size() const override { return m_h.size; }
  Capabilities capabilities() const override {
    Capabilities c;
    c.can_extents = true;
    c.thread_safe = true;
    c.preferred_io_size = std::max<std::uint32_t>(4u << 20, static_cast<std::uint32_t>(m_cs));
    return c;
  }
  [[nodiscard]] Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) override;
  [[nodiscard]] Result<void> extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) override;
  // qcow2 carries no whole-file checks of its own; its backing file may.
  [[nodiscard]] Result<void> verify_integrity() override {
    return m_backing ? m_backing->verify_integrity() : Result<void>{};
  }

  const Qcow2Details& details() const { return m_details; }
  BlockDevice* backing() { return m_backing.get(); }

 private:
  [[nodiscard]] Result<void> load(int depth, std::set<std::string>& chain);
  [[nodiscard]] Result<void> open_backing(const std::string& name, const std::optional<std::string>& fmt, int depth,
                                          std::set<std::string>& chain);
  Result<void> load_snapshots();
  // Reads of the image file for load.h.
  ReadAt read_at() {
    return [this](std::span<std::uint8_t> buf, std::uint64_t offset) {
      return pread_full(m_fd.get(), buf, offset, m_path);
    };
  }
  // The L2 table for L1 index `i`, or nullptr when unallocated.
  [[nodiscard]] Result<std::shared_ptr<const L2Table>> l2_table(std::uint64_t i);
  // Classifies guest cluster `ci` given its L2 table; for extended L2 `sub`
  // selects the subcluster. host = data offset of the (sub)cluster.
  [[nodiscard]] Result<Kind> classify(const L2Table* t, std::uint64_t ci, unsigned sub, std::uint64_t& host,
                                      std::uint64_t& raw) const;
  [[nodiscard]] Result<void> read_host(std::span<std::uint8_t> buf, std::uint64_t host);
  [[nodiscard]] Result<void> read_backing(std::span<std::uint8_t> buf, std::uint64_t guest);
  [[nodiscard]] Result<void> read_compressed(std::span<std::uint8_t> buf, std::uint64_t raw, std::uint64_t in_cluster);
  [[nodiscard]] Result<void> backing_extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out);

  std::string m_path;
  Fd m_fd;
  std::uint64_t m_file_size = 0;
  Header m_h;
  std::uint64_t m_cs = 0;
  std::uint64_t m_sub_size = 0;  // subcluster size (== m_cs without extended L2)
  CompressedLayout m_clayout{};
  std::vector<std::uint64_t> m_l1;
  std::unique_ptr<BlockDevice> m_backing;
  Qcow2Details m_details;

  std::mutex m_cache_mutex;
  std::unordered_map<std::uint64_t, std::shared_ptr<const L2Table>> m_cache;
  std::uint64_t m_cache_bytes = 0;
};

std::unexpected<Error> corrupt_at(const std::string& path, const std::string& what) {
  return fail(Errc::corruption, path + ": qcow2: " + what);
}

Result<std::unique_ptr<BlockDriver>> Qcow2Driver::open(const std::string& path, int depth,
                                                       std::set<std::string>& chain) {
  auto d = std::unique_ptr<Qcow2Driver>(new Qcow2Driver());
  d->m_path = path;
  UTSUSHI_TRY(d->load(depth, chain));
  return std::unique_ptr<BlockDriver>(std::move(d));
}

Result<void> Qcow2Driver::load(int depth, std::set<std::string>& chain) {
  m_fd = UTSUSHI_TRY(open_input(m_path, O_RDONLY));  // a FIFO or device node is refused, never waited on
  struct stat st {};
  if (::fstat(m_fd.get(), &st) != 0) {
    return fail_errno(errno, "cannot stat '" + m_path + "'");
  }
  m_file_size = static_cast<std::uint64_t>(st.st_size);
  // Cluster 0 holds the header, its extensions and the backing file name.
  auto block = UTSUSHI_TRY(load_header(read_at(), m_file_size, m_path));
  const std::vector<std::uint8_t>& c0 = block.cluster0;
  const HeaderExtensions& ext = block.extensions;
  m_h = block.header;
  m_cs = m_h.cluster_size();
  m_sub_size = m_h.extended_l2() ? m_cs / k_subclusters : m_cs;
  m_clayout = compressed_layout(m_h.cluster_bits);
  if (ext.has_data_file) {
    return fail(Errc::not_supported, m_path + ": qcow2: images with an external data file are not supported");
  }
  m_details.version = m_h.version;
  m_details.cluster_size = m_cs;
  m_details.refcount_bits = m_h.refcount_bits();
  m_details.compression_type = m_h.compression_type == CompressionType::zstd ? "zstd" : "zlib";
  m_details.extended_l2 = m_h.extended_l2();
  m_details.dirty = (m_h.incompatible_features & k_incompat_dirty) != 0;
  m_details.corrupt = (m_h.incompatible_features & k_incompat_corrupt) != 0;
  m_details.lazy_refcounts = (m_h.compatible_features & k_compat_lazy_refcounts) != 0;
  if (m_details.corrupt) {
    UTSUSHI_LOG_WARN("{}: qcow2 image is marked corrupt; reading it anyway", m_path);
  }

  m_l1.resize(m_h.l1_size);
  if (m_h.l1_size > 0) {
    std::vector<std::uint8_t> raw(std::size_t{m_h.l1_size} * k_table_entry_bytes);
    UTSUSHI_TRY(pread_full(m_fd.get(), raw, m_h.l1_table_offset, m_path));
    for (std::size_t i = 0; i < m_l1.size(); ++i) {
      m_l1[i] = load_be64(raw.data() + i * k_table_entry_bytes);
    }
  }
  if (m_h.nb_snapshots > 0) {
    UTSUSHI_TRY(load_snapshots());
  }
  if (m_h.backing_file_offset != 0) {
    std::string name(reinterpret_cast<const char*>(c0.data() + m_h.backing_file_offset), m_h.backing_file_size);
    UTSUSHI_TRY(open_backing(name, ext.backing_format, depth, chain));
  }
  return {};
}

Result<void> Qcow2Driver::load_snapshots() {
  std::uint64_t consumed = 0;
  m_details.snapshots = UTSUSHI_TRY(qcow2::load_snapshots(read_at(), m_h, m_file_size, m_path, consumed));
  return {};
}

Result<void> Qcow2Driver::open_backing(const std::string& name, const std::optional<std::string>& fmt, int depth,
                                       std::set<std::string>& chain) {
  if (depth + 1 > k_max_backing_depth) {
    return fail(Errc::corruption, m_path + ": backing chain deeper than " + std::to_string(k_max_backing_depth));
  }
  std::filesystem::path p(name);
  std::string resolved = p.is_absolute() ? name : (std::filesystem::path(m_path).parent_path() / p).string();
  std::string key = real_path(resolved);
  if (chain.contains(key)) {
    return fail(Errc::corruption, m_path + ": backing chain loops back to '" + resolved + "'");
  }
  std::string format;
  if (fmt) {
    format = *fmt;
  } else {
    format = UTSUSHI_TRY_CTX(probe_path(resolved), "backing file of " + m_path).format;
  }
  m_details.backing_file = name;
  m_details.backing_file_resolved = resolved;
  m_details.backing_format = format;
  std::unique_ptr<BlockDriver> driver;
  if (format == "qcow2") {
    chain.insert(key);
    driver = UTSUSHI_TRY_CTX(Qcow2Driver::open(resolved, depth + 1, chain), "backing file of " + m_path);
  } else {
    auto dev = UTSUSHI_TRY_CTX(open_image(resolved, OpenOptions{format, Access::read_only}),
                               "backing file of " + m_path);
    m_backing = std::move(dev);
    return {};
  }
  m_backing = std::make_unique<BlockDevice>(std::move(driver));
  return {};
}

Result<std::shared_ptr<const L2Table>> Qcow2Driver::l2_table(std::uint64_t i) {
  std::uint64_t e = m_l1[i];
  std::uint64_t off = e & k_l1e_offset_mask;
  if (off == 0) {
    return std::shared_ptr<const L2Table>();
  }
  if ((e & k_l1e_reserved_mask) != 0) {
    return corrupt_at(m_path, "L1 entry " + std::to_string(i) + " has reserved bits set");
  }
  if ((off & (m_cs - 1)) != 0) {
    return corrupt_at(m_path, "L2 table offset " + std::to_string(off) + " is not cluster aligned");
  }
  if (off > m_file_size || m_cs > m_file_size - off) {
    return corrupt_at(m_path, "L2 table at offset " + std::to_string(off) + " is past the end of the file");
  }
  if (off < m_cs) {
    return corrupt_at(m_path, "L2 table overlaps the header");
  }
  {
    std::lock_guard lock(m_cache_mutex);
    if (auto it = m_cache.find(off); it != m_cache.end()) {
      return it->second;
    }
  }
  std::vector<std::uint8_t> raw(static_cast<std::size_t>(m_cs));
  UTSUSHI_TRY(pread_full(m_fd.get(), raw, off, m_path));
  auto t = std::make_shared<L2Table>(raw.size() / k_table_entry_bytes);
  for (std::size_t k = 0; k < t->size(); ++k) {
    (*t)[k] = load_be64(raw.data() + k * k_table_entry_bytes);
  }
  std::lock_guard lock(m_cache_mutex);
  while (m_cache_bytes + m_cs > k_l2_cache_bytes && !m_cache.empty()) {
    m_cache.erase(m_cache.begin());
    m_cache_bytes -= m_cs;
  }
  auto [it, inserted] = m_cache.emplace(off, t);
  if (inserted) {
    m_cache_bytes += m_cs;
  }
  return it->second;
}

Result<Kind> Qcow2Driver::classify(const L2Table* t, std::uint64_t ci, unsigned sub, std::uint64_t& host,
                                   std::uint64_t& raw) const {
  if (t == nullptr) {
    return Kind::unallocated;
  }
  std::uint64_t idx = ci & (m_h.l2_entries() - 1);
  std::uint64_t e = m_h.extended_l2() ? (*t)[idx * 2] : (*t)[idx];
  raw = e;
  if ((e & k_oflag_compressed) != 0) {
    return Kind::compressed;
  }
  if ((e & k_l2e_std_reserved_mask) != 0 && !m_h.extended_l2()) {
    return corrupt_at(m_path, "L2 entry for cluster " + std::to_string(ci) + " has reserved bits set");
  }
  std::uint64_t off = e & k_l2e_offset_mask;
  if (off != 0 && (off & (m_cs - 1)) != 0) {
    return corrupt_at(m_path, "data cluster offset " + std::to_string(off) + " is not cluster aligned");
  }
  if (m_h.extended_l2()) {
    std::uint64_t bitmap = (*t)[idx * 2 + 1];
    bool alloc = ((bitmap >> sub) & 1) != 0;
    bool zero = ((bitmap >> (32 + sub)) & 1) != 0;
    if (alloc && zero) {
      return corrupt_at(m_path, "subcluster both allocated and zero in cluster " + std::to_string(ci));
    }
    if (alloc) {
      if (off == 0) {
        return corrupt_at(m_path, "allocated subcluster without a host cluster in cluster " + std::to_string(ci));
      }
      host = off + sub * m_sub_size;
      return Kind::normal;
    }
    return zero ? Kind::zero : Kind::unallocated;
  }
  if ((e & k_oflag_zero) != 0) {
    return Kind::zero;
  }
  if (off == 0) {
    return Kind::unallocated;
  }
  host = off;
  return Kind::normal;
}

// Data past the end of the file reads as zeros (a truncated last cluster).
Result<void> Qcow2Driver::read_host(std::span<std::uint8_t> buf, std::uint64_t host) {
  if (host < m_cs) {
    return corrupt_at(m_path, "data cluster overlaps the header");
  }
  std::size_t n = UTSUSHI_TRY(pread_some(m_fd.get(), buf, host, m_path));
  std::fill(buf.begin() + static_cast<std::ptrdiff_t>(n), buf.end(), 0);
  return {};
}

Result<void> Qcow2Driver::read_backing(std::span<std::uint8_t> buf, std::uint64_t guest) {
  std::size_t have = 0;
  if (m_backing && guest < m_backing->size()) {
    have = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), m_backing->size() - guest));
    UTSUSHI_TRY(m_backing->pread(buf.first(have), guest));
  }
  std::fill(buf.begin() + static_cast<std::ptrdiff_t>(have), buf.end(), 0);
  return {};
}

Result<void> Qcow2Driver::read_compressed(std::span<std::uint8_t> buf, std::uint64_t raw, std::uint64_t in_cluster) {
  thread_local std::vector<std::uint8_t> t_in, t_out;
  auto ref = decode_compressed(raw, m_clayout);
  if (ref.host_offset >= m_file_size || ref.host_offset < m_cs) {
    return corrupt_at(m_path, "compressed cluster at offset " + std::to_string(ref.host_offset) +
                                  " is outside the image");
  }
  t_in.resize(static_cast<std::size_t>(ref.max_bytes));
  std::size_t n = UTSUSHI_TRY(pread_some(m_fd.get(), t_in, ref.host_offset, m_path));
  t_out.resize(static_cast<std::size_t>(m_cs));
  UTSUSHI_TRY_CTX(decompress_cluster(m_h.compression_type, std::span(t_in).first(n), t_out), m_path);
  std::copy_n(t_out.begin() + static_cast<std::ptrdiff_t>(in_cluster), buf.size(), buf.begin());
  return {};
}

Result<void> Qcow2Driver::pread(std::span<std::uint8_t> buf, std::uint64_t offset) {
  const std::uint64_t end = offset + buf.size();
  std::uint64_t pos = offset;
  std::shared_ptr<const L2Table> table;
  std::uint64_t table_index = UINT64_MAX;
  const std::uint64_t l2_shift = m_h.cluster_bits;
  const std::uint64_t per_l2 = m_h.l2_entries();
  while (pos < end) {
    std::uint64_t ci = pos >> l2_shift;
    if (ci / per_l2 != table_index) {
      table_index = ci / per_l2;
      table = UTSUSHI_TRY(l2_table(table_index));
    }
    std::uint64_t in = pos & (m_cs - 1);
    unsigned sub = static_cast<unsigned>(in / m_sub_size);
    std::uint64_t unit_end = std::min(end, (pos - in) + (sub + 1) * m_sub_size);
    std::uint64_t host = 0, raw = 0;
    Kind kind = UTSUSHI_TRY(classify(table.get(), ci, sub, host, raw));
    if (kind == Kind::compressed) {
      unit_end = std::min(end, (pos - in) + m_cs);
    }
    auto out = buf.subspan(static_cast<std::size_t>(pos - offset), static_cast<std::size_t>(unit_end - pos));
    switch (kind) {
      case Kind::zero:
        std::fill(out.begin(), out.end(), 0);
        break;
      case Kind::unallocated:
        UTSUSHI_TRY(read_backing(out, pos));
        break;
      case Kind::compressed:
        UTSUSHI_TRY(read_compressed(out, raw, in));
        break;
      case Kind::normal: {
        // Coalesce following (sub)clusters that are contiguous on the host.
        std::uint64_t host_start = host + (in - sub * m_sub_size);
        std::uint64_t next_host = host + m_sub_size;
        while (unit_end < end) {
          std::uint64_t nci = unit_end >> l2_shift;
          if (nci / per_l2 != table_index) {
            break;
          }
          unsigned nsub = static_cast<unsigned>((unit_end & (m_cs - 1)) / m_sub_size);
          std::uint64_t nhost = 0, nraw = 0;
          auto k = classify(table.get(), nci, nsub, nhost, nraw);
          if (!k || *k != Kind::normal || nhost != next_host) {
            break;
          }
          next_host += m_sub_size;
          unit_end = std::min(end, unit_end + m_sub_size);
        }
        out = buf.subspan(static_cast<std::size_t>(pos - offset), static_cast<std::size_t>(unit_end - pos));
        UTSUSHI_TRY(read_host(out, host_start));
        break;
      }
    }
    pos = unit_end;
  }
  return {};
}

Result<void> Qcow2Driver::backing_extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) {
  std::uint64_t bsize = m_backing ? m_backing->size() : 0;
  if (offset < bsize) {
    std::uint64_t n = std::min(length, bsize - offset);
    for (Extent e : UTSUSHI_TRY(m_backing->extents(offset, n))) {
      e.host_offset = k_no_host_offset;  // the bytes live in another file
      out.push_back(e);
    }
    offset += n;
    length -= n;
  }
  if (length > 0) {
    out.push_back({offset, length, ExtentType::hole});
  }
  return {};
}

Result<void> Qcow2Driver::extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) {
  const std::uint64_t per_l2 = m_h.l2_entries();
  std::uint64_t ci0 = offset >> m_h.cluster_bits;
  // One L2 table's span per call; the core asks again.
  std::uint64_t end = std::min(offset + length, ((ci0 / per_l2) + 1) * per_l2 * m_cs);
  end = std::min(end, m_h.size);
  auto table = UTSUSHI_TRY(l2_table(ci0 / per_l2));
  std::vector<Extent> local;
  auto push = [&](std::uint64_t off, std::uint64_t len, ExtentType t, std::uint64_t host = k_no_host_offset) {
    Extent e{off, len, t, host};
    if (!local.empty() && extent_continues(local.back(), e)) {
      local.back().length += len;
    } else {
      local.push_back(e);
    }
  };
  std::uint64_t pos = offset;
  while (pos < end) {
    std::uint64_t ci = pos >> m_h.cluster_bits;
    std::uint64_t in = pos & (m_cs - 1);
    unsigned sub = static_cast<unsigned>(in / m_sub_size);
    std::uint64_t host = 0, raw = 0;
    Kind kind = UTSUSHI_TRY(classify(table.get(), ci, sub, host, raw));
    std::uint64_t unit_end = std::min(end, (pos - in) + (kind == Kind::compressed ? m_cs : (sub + 1) * m_sub_size));
    if (table == nullptr) {
      unit_end = end;
    }
    switch (kind) {
      case Kind::normal:
        push(pos, unit_end - pos, ExtentType::data, host + (in - sub * m_sub_size));
        break;
      case Kind::compressed:
        push(pos, unit_end - pos, ExtentType::data);
        break;
      case Kind::zero:
        push(pos, unit_end - pos, ExtentType::zero);
        break;
      case Kind::unallocated:
        push(pos, unit_end - pos, ExtentType::hole);
        break;
    }
    pos = unit_end;
  }
  // Holes fall through to the backing file.
  for (const Extent& e : local) {
    if (e.type == ExtentType::hole && m_backing) {
      UTSUSHI_TRY(backing_extents(e.offset, e.length, out));
    } else {
      out.push_back(e);
    }
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<BlockDriver>> open_qcow2(const std::string& path, const OpenOptions& options, bool) {
  if (options.access == Access::read_write) {
    return fail(Errc::not_supported, path + ": qcow2 images are opened read-only (write a new image with convert)");
  }
  std::set<std::string> chain{real_path(path)};
  return Qcow2Driver::open(path, 0, chain);
}

const Qcow2Details* qcow2_details(BlockDevice& device) {
  auto* d = dynamic_cast<Qcow2Driver*>(&device.driver());
  return d ? &d->details() : nullptr;
}

BlockDevice* qcow2_backing(BlockDevice& device) {
  auto* d = dynamic_cast<Qcow2Driver*>(&device.driver());
  return d ? d->backing() : nullptr;
}

}  // namespace utsushi::imagefmt
