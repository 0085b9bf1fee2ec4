// streamOptimized VMDK writer, open-vmdk's layout (see vmdk.h).
#include <algorithm>
#include <random>
#include <thread>

#include "../data_runs.h"
#include "utsushi/common/ordered_pipeline.h"
#include "../deflate.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/zero.h"
#include "utsushi/imagefmt/vmdk.h"

namespace utsushi::imagefmt {
namespace {

using namespace vmdk;

constexpr std::uint64_t k_grains_per_job = 16;  // 1 MiB of guest data

// A job: `count` grains from grain `first` (data_runs.h).
using GrainRun = DataRun;

struct Packed {
  std::vector<std::uint8_t> bytes;           // markers + zlib data, sector padded
  std::vector<std::uint64_t> grain_offset;   // byte offset in `bytes`, or UINT64_MAX for zero grains
  std::uint64_t bytes_read = 0;
  std::uint64_t grains_stored = 0;
};

// The extent file name as the descriptor can hold it. The descriptor quotes
// the name and has no escapes (QEMU reads it as "[^"\r\n]*"), so a quote or
// a control character becomes '_'. A streamOptimized file is its own single
// extent: the name is informational and nothing opens the file by it.
std::string descriptor_name(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c == '"' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = '_';
    }
  }
  return out;
}

std::string descriptor(std::uint64_t capacity, const std::string& name) {
  std::random_device rd;
  std::uint32_t cid = rd();
  if (cid >= 0xFFFFFFFEu) {
    cid = 1;
  }
  char line[128];
  std::string s = "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\n";
  std::snprintf(line, sizeof line, "CID=%08x\nparentCID=ffffffff\n", cid);
  s += line;
  s += "createType=\"streamOptimized\"\n\n# Extent description\n";
  s += "RW " + std::to_string(capacity) + " SPARSE \"" + descriptor_name(name) + "\"\n\n# The Disk Data Base\n#DDB\n\n";
  std::snprintf(line, sizeof line, "ddb.longContentID = \"%08x%08x%08x%08x\"\n", rd(), rd(), rd(), cid);
  s += line;
  std::uint64_t cyl = std::min<std::uint64_t>(65535, (capacity + 255 * 63 - 1) / (255 * 63));
  s += "ddb.virtualHWVersion = \"4\"\n";
  s += "ddb.geometry.cylinders = \"" + std::to_string(cyl) + "\"\n";
  s += "ddb.geometry.heads = \"255\"\nddb.geometry.sectors = \"63\"\n";
  s += "ddb.adapterType = \"lsilogic\"\nddb.toolsVersion = \"2147483647\"\n";
  return s;
}

}  // namespace

Result<VmdkWriteStats> write_vmdk_stream_optimized(BlockDevice& source, int fd, const std::string& description,
                                                  const VmdkWriteOptions& o) {
  Header h;
  const std::uint64_t size = source.size();
  h.capacity = (size + k_sector - 1) / k_sector;
  const std::uint64_t grain_bytes = h.grain_size * k_sector;
  const std::uint64_t grains = (h.capacity + h.grain_size - 1) / h.grain_size;
  const std::uint64_t gts = std::max<std::uint64_t>(1, (grains + h.num_gtes_per_gt - 1) / h.num_gtes_per_gt);
  const std::uint64_t gd_sectors = (gts * k_gte_bytes + k_sector - 1) / k_sector;
  const std::uint64_t gt_sectors = std::uint64_t{h.num_gtes_per_gt} * k_gte_bytes / k_sector;
  h.gd_offset = h.descriptor_offset + h.descriptor_size;
  const std::uint64_t gt_start = h.gd_offset + gd_sectors;
  h.overhead = gt_start + gts * gt_sectors;
  if (gts > (1u << 24)) {
    return fail(Errc::invalid_argument, "vmdk: virtual size too large");
  }
  std::string name = o.extent_name.empty() ? "disk.vmdk" : o.extent_name;
  std::string desc = descriptor(h.capacity, name);
  if (desc.size() > h.descriptor_size * k_sector) {
    return fail(Errc::invalid_argument, "vmdk: descriptor too long (extent name?)");
  }
  auto jobs = UTSUSHI_TRY(plan_data_runs(source, grain_bytes, k_grains_per_job));
  std::vector<std::uint32_t> gte(static_cast<std::size_t>(gts * h.num_gtes_per_gt), 0);
  std::uint64_t cursor = h.overhead * k_sector;
  std::uint64_t done = 0;
  VmdkWriteStats stats;
  unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());

  auto produce = [&](std::size_t i, Packed& p) -> Result<void> {
    UTSUSHI_TRY(check_cancelled());
    const GrainRun& run = jobs[i];
    std::uint64_t off = run.first * grain_bytes;
    std::uint64_t len = std::min(run.count * grain_bytes, size - off);
    std::vector<std::uint8_t> data(static_cast<std::size_t>(run.count * grain_bytes), 0);
    UTSUSHI_TRY(source.pread(std::span(data).first(static_cast<std::size_t>(len)), off));
    p.bytes_read = len;
    p.grain_offset.assign(static_cast<std::size_t>(run.count), UINT64_MAX);
    std::vector<std::uint8_t> out(static_cast<std::size_t>(grain_bytes * 2 + 1024));
    for (std::uint64_t g = 0; g < run.count; ++g) {
      auto grain = std::span(data).subspan(static_cast<std::size_t>(g * grain_bytes),
                                           static_cast<std::size_t>(grain_bytes));
      if (is_all_zero(grain)) {
        continue;
      }
      auto n = deflate_buffer(grain, std::span(out).subspan(k_marker_bytes), 15, o.level);
      if (!n) {
        return fail(Errc::internal, "vmdk: deflate failed");
      }
      store_le64(out.data(), (run.first + g) * h.grain_size);
      store_le32(out.data() + 8, static_cast<std::uint32_t>(*n));
      std::uint64_t rec = (k_marker_bytes + *n + k_sector - 1) / k_sector * k_sector;
      p.grain_offset[static_cast<std::size_t>(g)] = p.bytes.size();
      ++p.grains_stored;
      p.bytes.insert(p.bytes.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k_marker_bytes + *n));
      p.bytes.resize(p.bytes.size() + (rec - k_marker_bytes - *n), 0);
    }
    return {};
  };
  auto consume = [&](std::size_t i, Packed& p) -> Result<void> {
    if (!p.bytes.empty()) {
      UTSUSHI_TRY(pwrite_full(fd, p.bytes, cursor, description));
    }
    for (std::size_t g = 0; g < p.grain_offset.size(); ++g) {
      if (p.grain_offset[g] != UINT64_MAX) {
        std::uint64_t sector = (cursor + p.grain_offset[g]) / k_sector;
        if (sector > 0xFFFFFFFFu) {
          return fail(Errc::not_supported, "vmdk: image larger than 2 TiB of grains");
        }
        gte[static_cast<std::size_t>(jobs[i].first + g)] = static_cast<std::uint32_t>(sector);
      }
    }
    cursor += p.bytes.size();
    done += p.bytes_read;
    stats.bytes_read += p.bytes_read;
    stats.bytes_written += std::min(p.grains_stored * grain_bytes, p.bytes_read);
    if (o.progress) {
      o.progress(std::min(done, size), size);
    }
    return {};
  };
  UTSUSHI_TRY(run_ordered<Packed>(jobs.size(), threads, std::size_t{threads} * 4, produce, consume));

  // End-of-stream marker, then the metadata, the header last.
  std::vector<std::uint8_t> sector(k_sector, 0);
  UTSUSHI_TRY(pwrite_full(fd, sector, cursor, description));
  cursor += k_sector;
  std::vector<std::uint8_t> meta(static_cast<std::size_t>((h.overhead - h.gd_offset) * k_sector), 0);
  for (std::uint64_t t = 0; t < gts; ++t) {
    store_le32(meta.data() + t * k_gte_bytes, static_cast<std::uint32_t>(gt_start + t * gt_sectors));
  }
  for (std::size_t k = 0; k < gte.size(); ++k) {
    store_le32(meta.data() + (gt_start - h.gd_offset) * k_sector + k * k_gte_bytes, gte[k]);
  }
  UTSUSHI_TRY(pwrite_full(fd, meta, h.gd_offset * k_sector, description));
  std::vector<std::uint8_t> dsc(static_cast<std::size_t>(h.descriptor_size * k_sector), 0);
  std::copy(desc.begin(), desc.end(), dsc.begin());
  UTSUSHI_TRY(pwrite_full(fd, dsc, h.descriptor_offset * k_sector, description));
  encode_header(h, sector);
  UTSUSHI_TRY(pwrite_full(fd, sector, 0, description));
  if (o.progress) {
    o.progress(size, size);
  }
  stats.file_size = cursor;
  stats.bytes_zero = size - stats.bytes_written;
  return stats;
}

}  // namespace utsushi::imagefmt
