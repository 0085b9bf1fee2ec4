#include "utsushi/livemig/disk_copy.h"

#include <fmt/core.h>

#include <algorithm>

#include "utsushi/common/zero.h"
#include "utsushi/livemig/disk_hash.h"

namespace utsushi::livemig {

namespace {

constexpr std::uint64_t k_granule = k_disk_hash_granule;

// Collects ranges into batches within the limits and hands each full one on.
class Batcher {
 public:
  Batcher(std::uint32_t disk, BatchLimits limits, const BatchSink& sink)
      : m_disk(disk), m_limits(limits), m_sink(sink) {
    m_batch.disk = disk;
  }

  Result<void> add(std::uint64_t offset, std::span<const std::uint8_t> bytes, DiskRangeKind kind,
                   std::uint64_t length) {
    bool data = kind == DiskRangeKind::data;
    bool ranges_full = !extends(offset, kind) && m_batch.ranges.size() >= m_limits.max_ranges;
    bool data_full = data && m_batch.data.size() + bytes.size() > m_limits.max_data;
    if (ranges_full || data_full) {
      UTSUSHI_TRY(flush());
    }
    if (extends(offset, kind)) {
      m_batch.ranges.back().length += length;
    } else {
      m_batch.ranges.push_back({offset, length, kind});
    }
    if (data) {
      put_bytes(m_batch.data, bytes);
    }
    return {};
  }

  Result<void> flush() {
    if (m_batch.ranges.empty()) {
      return {};
    }
    DiskBatch full = std::exchange(m_batch, DiskBatch{m_disk, {}, {}});
    return m_sink(std::move(full));
  }

 private:
  bool extends(std::uint64_t offset, DiskRangeKind kind) const {
    if (m_batch.ranges.empty()) {
      return false;
    }
    const auto& last = m_batch.ranges.back();
    return last.kind == kind && last.offset + last.length == offset;
  }

  std::uint32_t m_disk;
  BatchLimits m_limits;
  const BatchSink& m_sink;
  DiskBatch m_batch;
};

// The end of the next read of a data range [offset, end): at most max_data
// bytes, ending on a granule boundary where it is cut.
std::uint64_t chunk_end(std::uint64_t offset, std::uint64_t end, std::uint64_t max_data) {
  if (end - offset <= max_data) {
    return end;
  }
  std::uint64_t cut = (offset + max_data) / k_granule * k_granule;
  return cut > offset ? cut : offset + max_data;
}

// Reads one data range and adds it piece by piece (all-zero granules as zero ranges).
Result<void> add_data_range(NbdClient& source, const DiskRange& r, Batcher& out, std::uint64_t max_data,
                            Bytes& buf) {
  std::uint64_t end = r.offset + r.length;
  for (std::uint64_t at = r.offset; at < end;) {
    std::uint64_t stop = chunk_end(at, end, max_data);
    buf.resize(stop - at);
    UTSUSHI_TRY(source.read(at, buf));
    for (std::uint64_t p = at; p < stop;) {
      std::uint64_t n = std::min(k_granule - p % k_granule, stop - p);
      auto piece = std::span<const std::uint8_t>(buf).subspan(p - at, n);
      bool zero = is_all_zero(piece);
      UTSUSHI_TRY(out.add(p, zero ? std::span<const std::uint8_t>() : piece,
                          zero ? DiskRangeKind::zero : DiskRangeKind::data, n));
      p += n;
    }
    at = stop;
  }
  return {};
}

}  // namespace

Result<void> read_batches(NbdClient& source, std::uint32_t disk, std::span<const DiskRange> ranges,
                          BatchLimits limits, const BatchSink& sink) {
  if (limits.max_data < k_granule || limits.max_data > k_max_disk_data || limits.max_ranges < 1 ||
      limits.max_ranges > k_max_disk_ranges) {
    return fail(Errc::invalid_argument, fmt::format("disk batches: limits {} bytes, {} ranges", limits.max_data,
                                                    limits.max_ranges));
  }
  Batcher out(disk, limits, sink);
  Bytes buf;
  for (const auto& r : ranges) {
    if (r.kind == DiskRangeKind::zero) {
      UTSUSHI_TRY(out.add(r.offset, {}, DiskRangeKind::zero, r.length));
    } else {
      UTSUSHI_TRY(add_data_range(source, r, out, limits.max_data, buf));
    }
  }
  return out.flush();
}

Result<void> write_batch(NbdClient& dest, const DiskBatch& batch) {
  std::size_t at = 0;
  for (const auto& r : batch.ranges) {
    if (r.kind == DiskRangeKind::copy) {
      return fail(Errc::internal, "write_batch: a copy range that was not resolved");
    }
    if (r.kind == DiskRangeKind::zero) {
      UTSUSHI_TRY(dest.zero(r.offset, r.length));
    } else {
      UTSUSHI_TRY(dest.write(r.offset, std::span(batch.data).subspan(at, r.length)));
      at += r.length;
    }
  }
  return {};
}

}  // namespace utsushi::livemig
