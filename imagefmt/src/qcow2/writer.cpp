// One-pass qcow2 writer for convert (see qcow2.h, write_qcow2).
//
// File layout: cluster 0 header | data clusters, compressed byte runs and L2
// tables in guest order | refcount table | refcount blocks | L1 table.
// Every allocated host cluster has refcount 1 except clusters holding
// compressed bytes, which count one per compressed cluster touching them
// (qcow2.txt "Compressed Clusters Descriptor"; QEMU qcow2_alloc_bytes). So L1
// and normal L2 entries carry OFLAG_COPIED, compressed entries never do.
//
// Pipeline: the source's data ranges are cut into cluster-aligned chunks;
// worker threads read a chunk, detect all-zero clusters and compress the rest;
// the calling thread takes chunks strictly in order and appends them. At most
// `window` chunks are in flight, which bounds memory.
#include <algorithm>
#include <atomic>
#include <thread>

#include "../data_runs.h"
#include "utsushi/common/ordered_pipeline.h"
#include "codec.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/zero.h"
#include "utsushi/imagefmt/qcow2.h"

namespace utsushi::imagefmt {
namespace {

using namespace qcow2;

constexpr std::uint64_t k_pending_flush = 8u << 20;  // write compressed bytes out in runs of this size

enum class ClusterState : std::uint8_t { zero, plain, compressed };

// A job: `count` guest clusters from cluster `first` (data_runs.h).
using ChunkJob = DataRun;

struct ChunkResult {
  std::vector<std::uint8_t> data;        // the chunk as read (clusters * cs)
  std::vector<std::uint8_t> packed;      // compressed clusters, cs bytes apart
  std::vector<ClusterState> state;
  std::vector<std::uint32_t> packed_len;
  std::uint64_t bytes_read = 0;
};

class Writer {
 public:
  Writer(int fd, std::string description, std::uint64_t size, const Qcow2WriteOptions& o)
      : m_fd(fd), m_desc(std::move(description)), m_size(size), m_opts(o) {
    m_cb = o.cluster_bits;
    m_cs = 1ull << m_cb;
    m_layout = compressed_layout(m_cb);
    m_l2_entries = m_cs / k_table_entry_bytes;
    m_l1.assign(std::max<std::uint64_t>(1, l1_entries_for(size, m_cb, false)), 0);
    m_end = m_cs;  // cluster 0: the header
    m_refcounts.assign(1, 1);
  }

  [[nodiscard]] Result<void> add_chunk(const ChunkJob& job, ChunkResult& r);
  [[nodiscard]] Result<std::uint64_t> finish();

 private:
  [[nodiscard]] Result<void> set_l2(std::uint64_t guest_cluster, std::uint64_t entry);
  [[nodiscard]] Result<void> flush_l2();
  std::uint64_t alloc_clusters(std::uint64_t n);
  [[nodiscard]] Result<void> append_compressed(std::span<const std::uint8_t> bytes, std::uint64_t& host);
  [[nodiscard]] Result<void> flush_pending(bool all);
  [[nodiscard]] Result<void> write(std::span<const std::uint8_t> b, std::uint64_t off) {
    return pwrite_full(m_fd, b, off, m_desc);
  }
  void add_ref(std::uint64_t cluster) {
    if (cluster >= m_refcounts.size()) {
      m_refcounts.resize(cluster + 1, 0);
    }
    ++m_refcounts[cluster];
  }

  int m_fd;
  std::string m_desc;
  std::uint64_t m_size;
  Qcow2WriteOptions m_opts;
  std::uint32_t m_cb;
  std::uint64_t m_cs;
  CompressedLayout m_layout{};
  std::uint64_t m_l2_entries;
  std::vector<std::uint64_t> m_l1;
  std::uint64_t m_end;  // next free cluster (byte offset)
  std::vector<std::uint32_t> m_refcounts;
  std::uint64_t m_l2_index = UINT64_MAX;
  std::vector<std::uint64_t> m_l2;
  std::uint64_t m_cbase = 0;             // host offset of m_cbuf (cluster aligned)
  std::vector<std::uint8_t> m_cbuf;      // compressed bytes not yet written
};

std::uint64_t Writer::alloc_clusters(std::uint64_t n) {
  std::uint64_t off = m_end;
  for (std::uint64_t i = 0; i < n; ++i) {
    add_ref(off / m_cs + i);
  }
  m_end += n * m_cs;
  return off;
}

Result<void> Writer::flush_l2() {
  if (m_l2_index == UINT64_MAX) {
    return {};
  }
  std::vector<std::uint8_t> raw(static_cast<std::size_t>(m_cs));
  for (std::size_t i = 0; i < m_l2.size(); ++i) {
    store_be64(raw.data() + i * k_table_entry_bytes, m_l2[i]);
  }
  std::uint64_t off = alloc_clusters(1);
  UTSUSHI_TRY(write(raw, off));
  m_l1[m_l2_index] = off | k_oflag_copied;
  m_l2_index = UINT64_MAX;
  return {};
}

Result<void> Writer::set_l2(std::uint64_t guest_cluster, std::uint64_t entry) {
  std::uint64_t idx = guest_cluster / m_l2_entries;
  if (idx != m_l2_index) {
    UTSUSHI_TRY(flush_l2());
    m_l2_index = idx;
    m_l2.assign(m_l2_entries, 0);
  }
  m_l2[guest_cluster % m_l2_entries] = entry;
  return {};
}

// Writes the complete clusters of the pending compressed bytes (all of them
// when `all`), keeping a partial last cluster so later bytes can share it.
Result<void> Writer::flush_pending(bool all) {
  std::uint64_t n = all ? m_cbuf.size() : (m_cbuf.size() / m_cs) * m_cs;
  if (n == 0) {
    return {};
  }
  UTSUSHI_TRY(write(std::span(m_cbuf).first(static_cast<std::size_t>(n)), m_cbase));
  if (all) {
    m_cbuf.clear();
    m_cbase = m_end;
    return {};
  }
  m_cbuf.erase(m_cbuf.begin(), m_cbuf.begin() + static_cast<std::ptrdiff_t>(n));
  m_cbase += n;
  return {};
}

// Byte-packs compressed clusters like QEMU: a stream may continue into the next
// host cluster only when that cluster is contiguous and still free.
Result<void> Writer::append_compressed(std::span<const std::uint8_t> bytes, std::uint64_t& host) {
  auto round_up = [&](std::uint64_t v) { return (v + m_cs - 1) / m_cs * m_cs; };
  if (m_cbuf.empty()) {
    m_cbase = m_end;
  }
  std::uint64_t reserved_end = m_cbase + round_up(m_cbuf.size());
  std::uint64_t needed_end = m_cbase + round_up(m_cbuf.size() + bytes.size());
  if (needed_end > reserved_end && reserved_end != m_end) {
    // Something was allocated after the pending clusters: start a new run.
    UTSUSHI_TRY(flush_pending(true));
    m_cbase = m_end;
    reserved_end = m_end;
    needed_end = m_cbase + round_up(bytes.size());
  }
  if (needed_end > m_end) {
    m_end = needed_end;
  }
  host = m_cbase + m_cbuf.size();
  for (std::uint64_t c = host / m_cs; c <= (host + bytes.size() - 1) / m_cs; ++c) {
    add_ref(c);
  }
  m_cbuf.insert(m_cbuf.end(), bytes.begin(), bytes.end());
  if (m_cbuf.size() >= k_pending_flush) {
    UTSUSHI_TRY(flush_pending(false));
  }
  return {};
}

Result<void> Writer::add_chunk(const ChunkJob& job, ChunkResult& r) {
  std::uint64_t i = 0;
  while (i < job.count) {
    std::uint64_t gc = job.first + i;
    switch (r.state[i]) {
      case ClusterState::zero:
        ++i;
        break;
      case ClusterState::compressed: {
        std::uint64_t host = 0;
        UTSUSHI_TRY(set_l2(gc, 0));  // flush a finished L2 table before the bytes are placed
        auto bytes = std::span(r.packed).subspan(static_cast<std::size_t>(i * m_cs), r.packed_len[i]);
        UTSUSHI_TRY(append_compressed(bytes, host));
        UTSUSHI_TRY(set_l2(gc, encode_compressed(host, bytes.size(), m_layout)));
        ++i;
        break;
      }
      case ClusterState::plain: {
        // A run of plain clusters in one L2 table: one allocation, one write.
        std::uint64_t n = 1;
        while (i + n < job.count && r.state[i + n] == ClusterState::plain &&
               (gc + n) / m_l2_entries == gc / m_l2_entries) {
          ++n;
        }
        UTSUSHI_TRY(set_l2(gc, 0));  // make sure the L2 table is current before allocating
        std::uint64_t off = alloc_clusters(n);
        UTSUSHI_TRY(write(std::span(r.data).subspan(static_cast<std::size_t>(i * m_cs),
                                                    static_cast<std::size_t>(n * m_cs)),
                          off));
        for (std::uint64_t k = 0; k < n; ++k) {
          UTSUSHI_TRY(set_l2(gc + k, (off + k * m_cs) | k_oflag_copied));
        }
        i += n;
        break;
      }
    }
  }
  return {};
}

Result<std::uint64_t> Writer::finish() {
  UTSUSHI_TRY(flush_pending(true));
  UTSUSHI_TRY(flush_l2());
  // Refcount table + blocks at the end; they count themselves, so iterate to
  // a fixed point (QEMU qcow2_refcount_metadata_size does the same).
  const unsigned order = 4;
  const std::uint64_t per_block = m_cs * 8 / 16;
  const std::uint64_t l1_clusters = (m_l1.size() * k_table_entry_bytes + m_cs - 1) / m_cs;
  const std::uint64_t data_clusters = m_end / m_cs + l1_clusters;
  std::uint64_t blocks = 0, table = 0;
  for (;;) {
    std::uint64_t total = data_clusters + blocks + table;
    std::uint64_t nb = (total + per_block - 1) / per_block;
    std::uint64_t nt = (nb * k_table_entry_bytes + m_cs - 1) / m_cs;
    if (nb == blocks && nt == table) {
      break;
    }
    blocks = nb;
    table = nt;
  }
  if (table * m_cs > k_max_reftable_bytes) {
    return fail(Errc::not_supported, m_desc + ": image too large for a refcount table");
  }
  std::uint64_t table_off = alloc_clusters(table);
  std::uint64_t blocks_off = alloc_clusters(blocks);
  // The L1 table goes last and is written without padding: the file ends
  // with its last entry, as QEMU's own files often end short of a cluster.
  std::uint64_t l1_off = alloc_clusters(l1_clusters);
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(m_cs));
  std::vector<std::uint8_t> reftable(static_cast<std::size_t>(table * m_cs), 0);
  for (std::uint64_t b = 0; b < blocks; ++b) {
    std::fill(buf.begin(), buf.end(), 0);
    for (std::uint64_t k = 0; k < per_block; ++k) {
      std::uint64_t c = b * per_block + k;
      if (c >= m_refcounts.size()) {
        break;
      }
      if (m_refcounts[c] > 0xFFFF) {
        return fail(Errc::internal, m_desc + ": refcount overflow in cluster " + std::to_string(c));
      }
      set_refcount(buf, k, order, m_refcounts[c]);
    }
    UTSUSHI_TRY(write(buf, blocks_off + b * m_cs));
    store_be64(reftable.data() + b * k_table_entry_bytes, blocks_off + b * m_cs);
  }
  UTSUSHI_TRY(write(reftable, table_off));
  std::vector<std::uint8_t> l1(static_cast<std::size_t>(m_l1.size() * k_table_entry_bytes));
  for (std::size_t i = 0; i < m_l1.size(); ++i) {
    store_be64(l1.data() + i * 8, m_l1[i]);
  }
  UTSUSHI_TRY(write(l1, l1_off));
  // The header goes last: until now cluster 0 is all zeros (not a qcow2 image).
  Header h;
  h.cluster_bits = m_cb;
  h.size = m_size;
  h.l1_size = static_cast<std::uint32_t>(m_l1.size());
  h.l1_table_offset = l1_off;
  h.refcount_table_offset = table_off;
  h.refcount_table_clusters = static_cast<std::uint32_t>(table);
  h.refcount_order = order;
  h.compression_type = m_opts.compression_type;
  if (m_opts.compression_type == CompressionType::zstd) {
    h.incompatible_features |= k_incompat_compression;
  }
  std::vector<std::uint8_t> header(static_cast<std::size_t>(std::min<std::uint64_t>(m_cs, 4096)), 0);
  encode_header(h, header);
  UTSUSHI_TRY(write(header, 0));
  return l1_off + l1.size();
}

}  // namespace

Result<Qcow2WriteStats> write_qcow2(BlockDevice& source, int fd, const std::string& description,
                                    const Qcow2WriteOptions& o) {
  if (o.cluster_bits < k_min_cluster_bits || o.cluster_bits > k_max_cluster_bits) {
    return fail(Errc::invalid_argument, "qcow2: cluster size must be 512 B to 2 MiB");
  }
  const std::uint64_t cs = 1ull << o.cluster_bits;
  const std::uint64_t size = source.size();
  if (size > k_max_virtual_size) {
    return fail(Errc::invalid_argument, "qcow2: virtual size too large");
  }
  // QEMU sizes a qcow2 image in whole 512-byte sectors and drops a partial
  // last one (block/qcow2.c qcow2_do_open: total_sectors = size / 512), so
  // the virtual size rounds up, as qemu-img convert's does; the tail reads as
  // zeros.
  const std::uint64_t virtual_size = (size + k_sector_size - 1) / k_sector_size * k_sector_size;
  const int level = o.level != 0 ? o.level : (o.compression_type == CompressionType::zstd ? 3 : -1);
  std::uint64_t chunk_bytes = std::max<std::uint64_t>(cs, o.compress ? (1u << 20) : (4u << 20));
  const std::uint64_t per_chunk = chunk_bytes / cs;
  auto jobs = UTSUSHI_TRY(plan_data_runs(source, cs, per_chunk));

  Writer writer(fd, description, virtual_size, o);
  unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min<unsigned>(threads, static_cast<unsigned>(std::max<std::size_t>(1, jobs.size())));
  const std::size_t window = std::size_t{threads} * 4;

  std::atomic<std::uint64_t> compressed_count{0};

  auto process = [&](const ChunkJob& job, ChunkResult& r) -> Result<void> {
    std::uint64_t off = job.first * cs;
    std::uint64_t len = std::min(job.count * cs, size - off);
    r.data.assign(static_cast<std::size_t>(job.count * cs), 0);
    UTSUSHI_TRY(check_cancelled());
    UTSUSHI_TRY(source.pread(std::span(r.data).first(static_cast<std::size_t>(len)), off));
    r.bytes_read = len;
    r.state.assign(static_cast<std::size_t>(job.count), ClusterState::plain);
    r.packed_len.assign(static_cast<std::size_t>(job.count), 0);
    if (o.compress) {
      r.packed.resize(r.data.size());
    }
    for (std::uint64_t i = 0; i < job.count; ++i) {
      auto cl = std::span(r.data).subspan(static_cast<std::size_t>(i * cs), static_cast<std::size_t>(cs));
      if (is_all_zero(cl)) {
        r.state[i] = ClusterState::zero;
        continue;
      }
      if (o.compress) {
        // QEMU stores a cluster compressed only when it fits in cs - 1 bytes.
        auto out = std::span(r.packed).subspan(static_cast<std::size_t>(i * cs), static_cast<std::size_t>(cs - 1));
        if (auto n = compress_cluster(o.compression_type, level, cl, out)) {
          r.state[i] = ClusterState::compressed;
          r.packed_len[i] = static_cast<std::uint32_t>(*n);
          ++compressed_count;
        }
      }
    }
    return {};
  };

  Qcow2WriteStats stats;
  std::uint64_t done = 0;
  auto produce = [&](std::size_t i, ChunkResult& r) { return process(jobs[i], r); };
  auto consume = [&](std::size_t i, ChunkResult& r) -> Result<void> {
    UTSUSHI_TRY(writer.add_chunk(jobs[i], r));
    stats.bytes_read += r.bytes_read;
    for (ClusterState st : r.state) {
      (st == ClusterState::zero ? stats.bytes_zero : stats.bytes_written) += cs;
    }
    done += r.bytes_read;
    if (o.progress) {
      o.progress(std::min(done, size), size);
    }
    return {};
  };
  UTSUSHI_TRY(run_ordered<ChunkResult>(jobs.size(), threads, window, produce, consume));
  stats.file_size = UTSUSHI_TRY(writer.finish());
  stats.bytes_zero += size - std::min(size, stats.bytes_read);  // holes never read
  stats.clusters_compressed = compressed_count.load();
  if (o.progress) {
    o.progress(size, size);
  }
  return stats;
}

}  // namespace utsushi::imagefmt
