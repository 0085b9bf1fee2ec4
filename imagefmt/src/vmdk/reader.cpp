// Read driver for hosted sparse VMDKs: monolithicSparse (raw grains) and
// streamOptimized (zlib grains behind 12-byte markers, grain directory
// possibly at the end behind a footer). Thread-safe: grain tables are cached
// behind a mutex, grains are read positionally and inflated per thread.
#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "../deflate.h"
#include "utsushi/imagefmt/vmdk.h"

namespace utsushi::imagefmt {
namespace {

using namespace vmdk;

constexpr std::uint64_t k_max_descriptor_read = 64u << 10;  // where a createType line may be

class VmdkDriver final : public BlockDriver {
 public:
  [[nodiscard]] static Result<std::unique_ptr<BlockDriver>> open(std::unique_ptr<BlockDevice> file,
                                                                 std::string description);

  std::string_view format_name() const override { return "vmdk"; }
  const std::string& description() const override { return m_desc; }
  std::uint64_t size() const override { return m_size; }
  Capabilities capabilities() const override {
    Capabilities c;
    c.can_extents = true;
    c.thread_safe = true;
    return c;
  }
  [[nodiscard]] Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) override;
  [[nodiscard]] Result<void> extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) override;
  [[nodiscard]] Result<void> verify_integrity() override { return m_file->verify_integrity(); }

 private:
  [[nodiscard]] Result<void> load();
  [[nodiscard]] Result<void> refuse_descriptor();
  [[nodiscard]] Result<std::uint32_t> gte(std::uint64_t grain);
  [[nodiscard]] Result<void> read_grain(std::uint64_t grain, std::uint32_t sector, std::span<std::uint8_t> out,
                                        std::uint64_t in_grain);
  std::unexpected<Error> corrupt(const std::string& what) const {
    return fail(Errc::corruption, m_desc + ": vmdk: " + what);
  }

  std::unique_ptr<BlockDevice> m_file;
  std::string m_desc;
  Header m_h;
  std::uint64_t m_size = 0;
  std::uint64_t m_grain_bytes = 0;
  std::vector<std::uint32_t> m_gd;
  std::mutex m_mutex;
  std::unordered_map<std::uint64_t, std::shared_ptr<const std::vector<std::uint32_t>>> m_gts;
};

Result<std::unique_ptr<BlockDriver>> VmdkDriver::open(std::unique_ptr<BlockDevice> file, std::string description) {
  auto d = std::unique_ptr<VmdkDriver>(new VmdkDriver());
  d->m_file = std::move(file);
  d->m_desc = std::move(description);
  UTSUSHI_TRY(d->load());
  return std::unique_ptr<BlockDriver>(std::move(d));
}

// A descriptor file: the disk lives in the extent files it names, which this
// driver does not open. Its createType names the subformat for the refusal.
Result<void> VmdkDriver::refuse_descriptor() {
  std::vector<std::uint8_t> text(static_cast<std::size_t>(std::min(m_file->size(), k_max_descriptor_read)));
  UTSUSHI_TRY(m_file->pread(text, 0));
  std::string type = descriptor_create_type(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
  return fail(Errc::not_supported, m_desc + ": vmdk: descriptor-only VMDKs (" +
                                       (type.empty() ? std::string("no createType") : "createType \"" + type + "\"") +
                                       ") are not supported; only monolithicSparse and streamOptimized");
}

Result<void> VmdkDriver::load() {
  std::vector<std::uint8_t> sector(k_sector);
  const std::uint64_t fsize = m_file->size();
  auto head = std::span(sector).first(static_cast<std::size_t>(std::min(fsize, k_sector)));
  UTSUSHI_TRY(m_file->pread(head, 0));
  if (is_descriptor(head)) {
    return refuse_descriptor();
  }
  if (fsize < k_sector) {
    return corrupt("file too small");
  }
  m_h = UTSUSHI_TRY_CTX(decode_header(sector), m_desc);
  if (m_h.gd_offset == k_gd_at_end) {
    // Stream: footer marker, footer (a header copy with the real GD), EOS.
    if (fsize < 3 * k_sector) {
      return corrupt("stream too short for a footer");
    }
    UTSUSHI_TRY(m_file->pread(sector, fsize - 2 * k_sector));
    auto footer = decode_header(sector);
    if (!footer || footer->gd_offset == k_gd_at_end) {
      return corrupt("grain directory at end of stream but no valid footer");
    }
    m_h.gd_offset = footer->gd_offset;
  }
  if ((m_h.flags & k_flag_compressed) != 0 && (m_h.flags & k_flag_markers) == 0) {
    return fail(Errc::not_supported, m_desc + ": vmdk: compressed grains without markers are not supported");
  }
  m_size = m_h.capacity * k_sector;
  m_grain_bytes = m_h.grain_size * k_sector;
  std::uint64_t grains = (m_h.capacity + m_h.grain_size - 1) / m_h.grain_size;
  std::uint64_t gts = (grains + m_h.num_gtes_per_gt - 1) / m_h.num_gtes_per_gt;
  std::uint64_t gd_bytes = gts * k_gte_bytes;
  if (gd_bytes > (64u << 20)) {
    return corrupt("grain directory too large");
  }
  if (m_h.gd_offset > fsize / k_sector || gd_bytes > fsize - m_h.gd_offset * k_sector) {
    return corrupt("grain directory at sector " + std::to_string(m_h.gd_offset) + " is past the end of the file");
  }
  std::vector<std::uint8_t> raw(static_cast<std::size_t>(gd_bytes));
  UTSUSHI_TRY(m_file->pread(raw, m_h.gd_offset * k_sector));
  m_gd.resize(static_cast<std::size_t>(gts));
  for (std::size_t i = 0; i < m_gd.size(); ++i) {
    m_gd[i] = load_le32(raw.data() + i * k_gte_bytes);
  }
  return {};
}

Result<std::uint32_t> VmdkDriver::gte(std::uint64_t grain) {
  std::uint64_t gi = grain / m_h.num_gtes_per_gt;
  std::uint32_t gt_sector = m_gd[static_cast<std::size_t>(gi)];
  if (gt_sector == 0) {
    return 0;
  }
  std::shared_ptr<const std::vector<std::uint32_t>> table;
  {
    std::lock_guard lock(m_mutex);
    if (auto it = m_gts.find(gi); it != m_gts.end()) {
      table = it->second;
    }
  }
  if (!table) {
    std::uint64_t bytes = std::uint64_t{m_h.num_gtes_per_gt} * k_gte_bytes;
    std::uint64_t off = std::uint64_t{gt_sector} * k_sector;
    if (off > m_file->size() || bytes > m_file->size() - off) {
      return corrupt("grain table " + std::to_string(gi) + " is past the end of the file");
    }
    std::vector<std::uint8_t> raw(static_cast<std::size_t>(bytes));
    UTSUSHI_TRY(m_file->pread(raw, off));
    auto t = std::make_shared<std::vector<std::uint32_t>>(m_h.num_gtes_per_gt);
    for (std::size_t i = 0; i < t->size(); ++i) {
      (*t)[i] = load_le32(raw.data() + i * k_gte_bytes);
    }
    std::lock_guard lock(m_mutex);
    if (m_gts.size() > 4096) {
      m_gts.clear();
    }
    table = m_gts.emplace(gi, std::move(t)).first->second;
  }
  return (*table)[static_cast<std::size_t>(grain % m_h.num_gtes_per_gt)];
}

Result<void> VmdkDriver::read_grain(std::uint64_t grain, std::uint32_t sector, std::span<std::uint8_t> out,
                                    std::uint64_t in_grain) {
  const std::uint64_t off = std::uint64_t{sector} * k_sector;
  const std::uint64_t fsize = m_file->size();
  if (off >= fsize) {
    return corrupt("grain " + std::to_string(grain) + " is past the end of the file");
  }
  if ((m_h.flags & k_flag_compressed) == 0) {
    std::uint64_t n = std::min<std::uint64_t>(out.size(), fsize - std::min(fsize, off + in_grain));
    UTSUSHI_TRY(m_file->pread(out.first(static_cast<std::size_t>(n)), off + in_grain));
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), 0);
    return {};
  }
  thread_local std::vector<std::uint8_t> t_in, t_out;
  std::uint8_t marker[k_marker_bytes];
  if (fsize - off < k_marker_bytes) {
    return corrupt("grain marker past the end of the file");
  }
  UTSUSHI_TRY(m_file->pread(marker, off));
  std::uint64_t lba = load_le64(marker);
  std::uint32_t csize = load_le32(marker + 8);
  if (lba != grain * m_h.grain_size) {
    return corrupt("grain marker at sector " + std::to_string(sector) + " names LBA " + std::to_string(lba) +
                   ", expected " + std::to_string(grain * m_h.grain_size));
  }
  if (csize == 0 || csize > fsize - off - k_marker_bytes || csize > 2 * m_grain_bytes + 1024) {
    return corrupt("grain at sector " + std::to_string(sector) + " has an invalid size " + std::to_string(csize));
  }
  t_in.resize(csize);
  UTSUSHI_TRY(m_file->pread(t_in, off + k_marker_bytes));
  t_out.assign(static_cast<std::size_t>(m_grain_bytes), 0);
  // The last grain may decode short when the capacity is not a grain multiple.
  auto n = inflate_buffer(t_in, t_out, 15);
  if (!n) {
    return corrupt("grain " + std::to_string(grain) + ": " + n.error().message());
  }
  // A grain decodes to a full grain. The last grain of a disk that is not a
  // grain multiple is a full grain too when qemu-img or utsushi wrote it
  // (zero-padded), but some writers store only the rest of the disk: both are
  // accepted, the bytes past the disk's end are not read.
  const std::uint64_t rest = std::min(m_grain_bytes, m_size - grain * m_grain_bytes);
  if (*n != m_grain_bytes && *n != rest) {
    return corrupt("grain " + std::to_string(grain) + " decodes to " + std::to_string(*n) + " bytes, not " +
                   std::to_string(m_grain_bytes) + " (or " + std::to_string(rest) + " for the last)");
  }
  std::copy_n(t_out.begin() + static_cast<std::ptrdiff_t>(in_grain), out.size(), out.begin());
  return {};
}

Result<void> VmdkDriver::pread(std::span<std::uint8_t> buf, std::uint64_t offset) {
  std::uint64_t pos = offset;
  const std::uint64_t end = offset + buf.size();
  while (pos < end) {
    std::uint64_t grain = pos / m_grain_bytes;
    std::uint64_t in = pos % m_grain_bytes;
    std::uint64_t n = std::min(end - pos, m_grain_bytes - in);
    auto out = buf.subspan(static_cast<std::size_t>(pos - offset), static_cast<std::size_t>(n));
    std::uint32_t sector = UTSUSHI_TRY(gte(grain));
    if (sector == 0 || (sector == 1 && (m_h.flags & k_flag_zeroed_gte) != 0)) {
      std::fill(out.begin(), out.end(), 0);
    } else {
      UTSUSHI_TRY(read_grain(grain, sector, out, in));
    }
    pos += n;
  }
  return {};
}

Result<void> VmdkDriver::extents(std::uint64_t offset, std::uint64_t length, std::vector<Extent>& out) {
  std::uint64_t pos = offset;
  const std::uint64_t end = std::min(offset + length, offset + 4096 * m_grain_bytes);
  while (pos < end) {
    std::uint64_t grain = pos / m_grain_bytes;
    std::uint64_t n = std::min(end - pos, m_grain_bytes - pos % m_grain_bytes);
    std::uint32_t sector = UTSUSHI_TRY(gte(grain));
    ExtentType t = sector == 0 ? ExtentType::hole
                   : (sector == 1 && (m_h.flags & k_flag_zeroed_gte) != 0) ? ExtentType::zero
                                                                           : ExtentType::data;
    if (!out.empty() && out.back().type == t && out.back().offset + out.back().length == pos) {
      out.back().length += n;
    } else {
      out.push_back({pos, n, t});
    }
    pos += n;
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<BlockDriver>> open_vmdk_on(std::unique_ptr<BlockDevice> file, std::string description) {
  return VmdkDriver::open(std::move(file), std::move(description));
}

Result<std::unique_ptr<BlockDriver>> open_vmdk(const std::string& path, const OpenOptions& options, bool) {
  if (options.access == Access::read_write) {
    return fail(Errc::not_supported, path + ": VMDK images are opened read-only (write a new image with convert)");
  }
  auto raw = UTSUSHI_TRY(open_raw(path, RawOpenOptions{Access::read_only, false}));
  return open_vmdk_on(std::make_unique<BlockDevice>(std::move(raw)), path);
}

}  // namespace utsushi::imagefmt
