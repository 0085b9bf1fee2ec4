// livemig's disk pre-copy inside a migration session (disk_session.h).
#include "utsushi/livemig/disk_session.h"

#include <unistd.h>

#include <cerrno>

#include <fmt/core.h>

#include <algorithm>
#include <deque>
#include <mutex>

#include "utsushi/common/log.h"
#include "utsushi/common/meminfo.h"
#include "utsushi/livemig/disk_copy.h"
#include "utsushi/livemig/disk_extents.h"
#include "utsushi/livemig/file_hash.h"
#include "utsushi/livemig/qemu_control.h"
#include "utsushi/livemig/shipper.h"

namespace utsushi::livemig {

using namespace std::chrono;
using nlohmann::json;

namespace {

// The fields of one query-block entry that name and describe its disk.
struct BlockEntry {
  std::string device, qdev, node, file, format, backing, backing_format;
  bool read_only = true;
  bool deep_chain = false;  // the backing file has a backing file itself
  std::uint64_t size = 0;
  std::uint64_t allocated = 0;  // "actual-size"
};

// The image fields of an entry ("image", with "backing-image" when the
// image has a backing file).
void read_image(const json& img, BlockEntry& e) {
  e.size = img.value("virtual-size", std::uint64_t{0});
  if (img.contains("actual-size") && img["actual-size"].is_number_unsigned()) {
    e.allocated = img["actual-size"].get<std::uint64_t>();
  }
  e.format = img.value("format", std::string());
  if (img.contains("backing-image") && img["backing-image"].is_object()) {
    const json& b = img["backing-image"];
    e.backing = b.value("filename", std::string());
    e.backing_format = b.value("format", std::string());
    e.deep_chain = b.contains("backing-image");
  } else if (img.contains("full-backing-filename")) {
    e.backing = img.value("full-backing-filename", std::string());
    e.backing_format = img.value("backing-filename-format", std::string());
  }
}

std::vector<BlockEntry> block_entries(const json& query_block) {
  std::vector<BlockEntry> out;
  if (!query_block.is_array()) {
    return out;
  }
  for (const auto& b : query_block) {
    if (!b.is_object() || !b.contains("inserted") || !b["inserted"].is_object()) {
      continue;
    }
    const json& ins = b["inserted"];
    BlockEntry e;
    e.device = b.value("device", std::string());
    e.qdev = b.value("qdev", std::string());
    e.node = ins.value("node-name", std::string());
    e.file = ins.value("file", std::string());
    e.read_only = ins.value("ro", true);
    if (ins.contains("image") && ins["image"].is_object()) {
      read_image(ins["image"], e);
    }
    out.push_back(std::move(e));
  }
  return out;
}

// A local image: a path, not a protocol URI or a json: description.
bool local_file(const std::string& file) {
  return !file.empty() && file.find("://") == std::string::npos && !file.starts_with("json:") &&
         !file.starts_with("nbd:");
}

// `name` is the entry's node name, block device name or qdev (as QEMU lists it).
bool names(const BlockEntry& e, const std::string& name) {
  return name == e.node || (!e.device.empty() && name == e.device) || (!e.qdev.empty() && name == e.qdev);
}

// Keeps the first error of a cleanup that tries every step.
void keep_first(Result<void>& first, Result<void> r) {
  if (!r && first) {
    first = std::move(r);
  }
}

// The NBD socket's directory: private to this user, and short enough for a
// UNIX socket path (108 bytes) under the usual $TMPDIR.
constexpr const char* k_socket_dir_prefix = "livemig-nbd";

// Stops QEMU's NBD server (when `server`) and removes the socket's directory.
void stop_server(Monitor& qmp, bool& server, PrivateDir& dir, Result<void>& first) {
  if (server) {
    keep_first(first, stop_nbd_server(qmp));
    server = false;
  }
  dir.remove();
}

std::uint64_t zero_bytes(const DiskBatch& b) {
  std::uint64_t n = 0;
  for (const auto& r : b.ranges) {
    n += r.kind == DiskRangeKind::zero ? r.length : 0;
  }
  return n;
}

bool known_format(const std::string& f) { return f == "qcow2" || f == "raw"; }

// The session's description of a chosen entry; Errc::not_supported for an
// image livemig cannot recreate or compare at the destination.
Result<SessionDisk> describe(const BlockEntry& e) {
  std::string what = fmt::format("--copy-storage: disk '{}' ({})", e.node, e.file);
  if (!known_format(e.format) || !e.file.starts_with('/')) {
    return fail(Errc::not_supported, fmt::format("{}: a {} image that is not a local qcow2 or raw file", what,
                                                 e.format.empty() ? "unknown" : e.format));
  }
  if (!e.backing.empty() && (!known_format(e.backing_format) || !e.backing.starts_with('/'))) {
    return fail(Errc::not_supported,
                fmt::format("{}: its backing file {} is not a local qcow2 or raw file", what, e.backing));
  }
  if (e.deep_chain) {
    return fail(Errc::not_supported, fmt::format("{}: its backing file {} has a backing file itself (one level "
                                                 "of backing is supported)",
                                                 what, e.backing));
  }
  return SessionDisk{e.node, e.qdev, e.size, e.file, e.format, e.backing, e.backing_format, {}, e.allocated};
}

}  // namespace

Result<std::vector<SessionDisk>> select_disks(const json& query_block, const std::vector<std::string>& drives) {
  auto entries = block_entries(query_block);
  std::vector<SessionDisk> out;
  bool all = drives.size() == 1 && drives[0] == "all";
  if (all) {
    for (const auto& e : entries) {
      if (!e.read_only && local_file(e.file) && !e.node.empty()) {
        out.push_back(UTSUSHI_TRY(describe(e)));
      }
    }
    if (out.empty()) {
      return fail(Errc::invalid_argument, "--copy-storage all: the source QEMU has no writable disk on a local image");
    }
    return out;
  }
  for (const auto& name : drives) {
    auto it = std::find_if(entries.begin(), entries.end(), [&](const BlockEntry& e) { return names(e, name); });
    if (it == entries.end()) {
      return fail(Errc::invalid_argument, fmt::format("--copy-storage: the source QEMU has no disk '{}'", name));
    }
    if (it->read_only) {
      return fail(Errc::invalid_argument, fmt::format("--copy-storage: disk '{}' is read-only", name));
    }
    if (std::any_of(out.begin(), out.end(), [&](const SessionDisk& d) { return d.node == it->node; })) {
      return fail(Errc::invalid_argument, fmt::format("--copy-storage: disk '{}' is named twice", name));
    }
    out.push_back(UTSUSHI_TRY(describe(*it)));
  }
  if (out.empty()) {
    return fail(Errc::invalid_argument, "--copy-storage: no disk named");
  }
  return out;
}

Result<std::vector<SessionDisk>> source_disks(Monitor& qmp, const std::vector<std::string>& drives) {
  auto blocks = UTSUSHI_TRY_CTX(qmp.execute("query-block"), "listing the source's disks");
  auto disks = UTSUSHI_TRY(select_disks(blocks, drives));
  for (auto& d : disks) {
    if (!d.backing.empty()) {
      d.backing_hash = UTSUSHI_TRY_CTX(file_content_hash(d.backing), "hashing the backing file of " + d.file);
    }
  }
  return disks;
}

std::unique_ptr<BackingIndexer> warm_backings(Monitor& qmp) {
  auto blocks = qmp.execute("query-block");
  if (!blocks) {
    return nullptr;
  }
  std::vector<BackingIndexer::File> files;
  for (const auto& e : block_entries(*blocks)) {
    if (!e.read_only && !e.deep_chain && e.backing.starts_with('/') && known_format(e.backing_format) &&
        std::none_of(files.begin(), files.end(), [&](const auto& f) { return f.path == e.backing; })) {
      files.push_back({e.backing, e.backing_format, ""});
    }
  }
  return files.empty() ? nullptr : std::make_unique<BackingIndexer>(std::move(files));
}

Result<std::vector<MatchedDisk>> match_disks(const json& query_block, const std::vector<SessionDisk>& disks) {
  auto entries = block_entries(query_block);
  std::vector<MatchedDisk> out;
  for (const auto& d : disks) {
    auto it = std::find_if(entries.begin(), entries.end(), [&](const BlockEntry& e) {
      return d.qdev.empty() ? e.node == d.node : e.qdev == d.qdev;
    });
    std::string what = d.qdev.empty() ? "node '" + d.node + "'" : "device '" + d.qdev + "'";
    if (it == entries.end() || it->node.empty()) {
      return fail(Errc::failed_precondition, fmt::format("the destination QEMU has no disk for the source's {}", what));
    }
    if (it->read_only) {
      return fail(Errc::failed_precondition, fmt::format("the destination's disk for {} is read-only", what));
    }
    if (it->size != d.size) {
      return fail(Errc::failed_precondition,
                  fmt::format("the destination's disk for {} has {} bytes, the source's {}: create it with the same "
                              "virtual size",
                              what, it->size, d.size));
    }
    if (it->format != d.format) {
      return fail(Errc::failed_precondition, fmt::format("the destination's disk for {} is {}, the source's {}", what,
                                                         it->format.empty() ? "of unknown format" : it->format,
                                                         d.format));
    }
    if (it->backing.empty() != d.backing.empty()) {
      return fail(Errc::failed_precondition,
                  fmt::format("the destination's disk for {} {} a backing file, the source's {}", what,
                              it->backing.empty() ? "has no" : "has", d.backing.empty() ? "has none" : d.backing));
    }
    out.push_back({it->node, it->file, it->backing});
  }
  return out;
}

Result<void> check_backings(const std::vector<SessionDisk>& disks, const std::vector<std::string>& backings) {
  for (std::size_t i = 0; i < disks.size(); ++i) {
    const SessionDisk& d = disks[i];
    if (d.backing.empty()) {
      continue;
    }
    const std::string& mine = i < backings.size() ? backings[i] : d.backing;
    auto hash = file_content_hash(mine);
    if (!hash) {
      return fail(Errc::failed_precondition,
                  fmt::format("disk {} ({}): its backing file {} cannot be read on this host: {}", i, d.file, mine,
                              hash.error().message()));
    }
    if (*hash != d.backing_hash) {
      return fail(Errc::failed_precondition,
                  fmt::format("disk {} ({}): the backing file {} on this host differs from the source's (content "
                              "hash {} here, {} there)",
                              i, d.file, mine, *hash, d.backing_hash));
    }
  }
  return {};
}

// ---- source ----

DiskSource::DiskSource(Monitor& qmp, std::vector<SessionDisk> disks, PrivateDir dir, int min_level, int max_level)
    : m_qmp(qmp), m_disks(std::move(disks)), m_dir(std::move(dir)), m_socket(m_dir.path() + "/src.sock"),
      m_hashes(m_disks.size()), m_reports(m_disks.size()), m_levels(min_level, max_level),
      m_level(m_levels.level()) {
  ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_compressionLevel, m_level);
  for (std::size_t i = 0; i < m_disks.size(); ++i) {
    m_reports[i].node = m_disks[i].node;
    m_reports[i].file = m_disks[i].file;
    m_reports[i].size = m_disks[i].size;
  }
}

Result<std::unique_ptr<DiskSource>> DiskSource::open(Monitor& qmp, std::vector<SessionDisk> disks, int min_level,
                                                     int max_level) {
  auto dir = UTSUSHI_TRY(PrivateDir::create(k_socket_dir_prefix));
  std::unique_ptr<DiskSource> s(new DiskSource(qmp, std::move(disks), std::move(dir), min_level, max_level));
  UTSUSHI_TRY(start_nbd_server(qmp, s->m_socket));
  s->m_server = true;
  for (std::size_t i = 0; i < s->m_disks.size(); ++i) {
    auto tag = fmt::format("livemig-{}-d{}", ::getpid(), i);
    s->m_trackers.push_back(UTSUSHI_TRY(DirtyTracker::start(qmp, s->m_disks[i].node, tag)));
  }
  std::vector<BackingIndexer::File> files;
  for (const auto& d : s->m_disks) {
    files.push_back({d.backing, d.backing_format, d.backing_hash});
  }
  s->m_indexer = std::make_unique<BackingIndexer>(
      std::move(files), [sent = &s->m_sent](std::size_t, const std::shared_ptr<const BackingBlocks>& index) {
        sent->add_backing(index);
      });
  return s;
}

DiskSource::~DiskSource() { (void)stop(); }

namespace {

// The ranges the current pass sends of one disk: its dirty ranges, or (pass
// 0) the top image's allocation, whose depth figures go into `rep`.
Result<std::vector<DiskRange>> pass_ranges(NbdClient& client, const PassExport& p, DiskReport& rep) {
  auto alloc = UTSUSHI_TRY(client.extents(k_context_allocation));
  if (p.bitmap) {
    return dirty_ranges(UTSUSHI_TRY(client.extents(dirty_bitmap_context(*p.bitmap))), alloc);
  }
  auto depth = UTSUSHI_TRY(client.extents(k_context_depth));
  for (const auto& e : depth) {
    rep.allocated_bytes += e.flags >= k_depth_top ? e.length : 0;
    rep.backing_bytes += e.flags > k_depth_top ? e.length : 0;
  }
  return top_image_ranges(depth, alloc);
}

double seconds(steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::uint64_t data_bytes_of(std::span<const DiskRange> ranges) noexcept {
  std::uint64_t n = 0;
  for (const auto& r : ranges) {
    n += r.kind == DiskRangeKind::data ? r.length : 0;
  }
  return n;
}

}  // namespace

Result<std::vector<DiskSource::PassDisk>> DiskSource::list_pass() {
  std::vector<PassDisk> disks;
  std::uint64_t data = 0;
  for (std::size_t i = 0; i < m_trackers.size(); ++i) {
    const PassExport& p = m_trackers[i].current();
    std::vector<std::string> contexts = {k_context_allocation};
    contexts.push_back(p.bitmap ? dirty_bitmap_context(*p.bitmap) : k_context_depth);
    auto client = UTSUSHI_TRY(NbdClient::connect(m_socket, p.name, contexts));
    auto ranges = UTSUSHI_TRY(pass_ranges(client, p, m_reports[i]));
    data += data_bytes_of(ranges);
    disks.push_back({std::move(client), std::move(ranges)});
  }
  m_progress.data_bytes = data;
  m_progress.listed = true;
  return disks;
}

Result<std::uint64_t> DiskSource::send_pass(const FrameSend& send, const std::string& phase) {
  auto t0 = steady_clock::now();
  m_progress.listed = false;
  m_progress.data_bytes = 0;
  m_progress.sent_bytes = 0;
  // In the report from the start, so that a pass that fails shows how far it
  // got; a pass of the same phase as the one before adds to it.
  if (m_phases.empty() || m_phases.back().phase != phase) {
    m_phases.push_back(DiskPhaseReport{.phase = phase, .passes = 0});
  }
  DiskPhaseReport& ph = m_phases.back();
  ph.passes++;
  const std::int64_t ms_before = ph.ms;
  const std::uint64_t data_before = ph.data_bytes;
  std::vector<PassDisk> disks = UTSUSHI_TRY(list_pass());
  UTSUSHI_LOG_DEBUG("disk pass {}: {} data bytes listed", phase, m_progress.data_bytes.load());
  // Each frame's counted blocks (block_index.h) and data bytes, published
  // once it was sent: the shipper sends frames in the order they were pushed.
  std::mutex queued_mutex;
  std::deque<std::pair<std::vector<CountedBlock>, std::uint64_t>> queued;
  // Declared after what its thread's `send` uses, so that it ends first.
  Shipper shipper(k_disk_ship_queue, [&](const OutFrame& f) -> Result<void> {
    UTSUSHI_TRY(send(f.type, f.payload));
    std::pair<std::vector<CountedBlock>, std::uint64_t> sent;
    {
      std::lock_guard lock(queued_mutex);
      sent = std::move(queued.front());
      queued.pop_front();
    }
    m_sent.publish(sent.first);
    m_progress.sent_bytes += sent.second;
    return {};
  });
  LevelFollower follower(m_levels, shipper);
  auto batch_start = steady_clock::now();
  for (std::size_t i = 0; i < disks.size(); ++i) {
    DiskReport& rep = m_reports[i];
    BatchSink sink = [&](DiskBatch&& b) -> Result<void> {
      m_hashes[i].add(b);
      Bytes msg;
      auto c0 = steady_clock::now();
      std::vector<CountedBlock> counted;
      const DiskBatch out = with_copies(
          b, [this](const BlockHash& h) { return m_sent.contains(h); },
          [this](std::uint64_t anchor) { return m_sent.may_start(anchor); }, &counted);
      UTSUSHI_TRY(encode_disk_batch(out, m_cctx.get(), msg));
      auto c1 = steady_clock::now();
      std::uint64_t wire = msg.size() + k_frame_header;
      int level = follower.after_batch(out.data.size(), seconds(c1 - c0), seconds(c1 - batch_start),
                                       static_cast<double>(wire), LevelController::k_judged_batch);
      if (level != m_level) {
        m_level = level;
        ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_compressionLevel, level);
      }
      {
        std::lock_guard lock(queued_mutex);
        queued.emplace_back(std::move(counted), b.data.size());
      }
      UTSUSHI_TRY(shipper.push({FrameType::disk_data, std::move(msg)}));
      batch_start = steady_clock::now();
      const std::uint64_t zeros = zero_bytes(b);
      const std::uint64_t copied = copy_bytes(out);
      rep.data_bytes += b.data.size();
      rep.zero_bytes += zeros;
      rep.copied_bytes += copied;
      rep.wire_bytes += wire;
      rep.batches++;
      ph.data_bytes += b.data.size();
      ph.zero_bytes += zeros;
      ph.copied_bytes += copied;
      ph.wire_bytes += wire;
      ph.ms = ms_before + duration_cast<milliseconds>(steady_clock::now() - t0).count();
      return {};
    };
    UTSUSHI_TRY(read_batches(disks[i].client, static_cast<std::uint32_t>(i), disks[i].ranges, BatchLimits{}, sink));
    UTSUSHI_TRY(disks[i].client.shutdown());
  }
  UTSUSHI_TRY(shipper.finish());
  ph.ms = ms_before + duration_cast<milliseconds>(steady_clock::now() - t0).count();
  const std::uint64_t sent = ph.data_bytes - data_before;
  if (ph.passes == 1) {
    UTSUSHI_LOG_INFO("disk pass {}: {} data bytes ({} as references), {} zero bytes, {} on the link, {} ms, zstd "
                     "level now {}",
                     phase, ph.data_bytes, ph.copied_bytes, ph.zero_bytes, ph.wire_bytes, ph.ms, m_level);
  } else {
    UTSUSHI_LOG_DEBUG("disk pass {} #{}: {} data bytes", phase, ph.passes, sent);
  }
  return sent;
}

Result<void> DiskSource::next_pass() {
  for (auto& t : m_trackers) {
    UTSUSHI_TRY(t.next_pass());
  }
  return {};
}

Result<void> DiskSource::send_end(const FrameSend& send) {
  json hashes = json::array();
  for (std::size_t i = 0; i < m_hashes.size(); ++i) {
    m_reports[i].hash = m_hashes[i].hex();
    hashes.push_back(m_reports[i].hash);
  }
  std::string text = json{{"hashes", hashes}}.dump();
  return send(FrameType::disk_end, as_bytes(std::string_view(text)));
}

Result<void> DiskSource::stop() {
  Result<void> first;
  for (auto& t : m_trackers) {
    keep_first(first, t.stop());
  }
  m_trackers.clear();
  stop_server(m_qmp, m_server, m_dir, first);
  return first;
}

// ---- destination ----

DiskSink::DiskSink(Monitor& qmp, std::vector<SessionDisk> disks, PrivateDir dir, ReceivedBlocks blocks)
    : m_qmp(qmp), m_disks(std::move(disks)), m_dir(std::move(dir)), m_socket(m_dir.path() + "/dst.sock"),
      m_hashes(m_disks.size()), m_reports(m_disks.size()), m_blocks(std::move(blocks)) {
  for (const auto& d : m_disks) {
    m_sizes.push_back(d.size);
  }
}

Result<std::unique_ptr<DiskSink>> DiskSink::open(Monitor& qmp, std::vector<SessionDisk> disks) {
  auto blocks = UTSUSHI_TRY_CTX(qmp.execute("query-block"), "listing the destination's disks");
  auto matched = UTSUSHI_TRY(match_disks(blocks, disks));
  std::vector<std::string> backings;
  for (const auto& m : matched) {
    backings.push_back(m.backing);
  }
  UTSUSHI_TRY(check_backings(disks, backings));
  auto dir = UTSUSHI_TRY(PrivateDir::create(k_socket_dir_prefix));
  // The scratch space's memory part: a quarter of the host's available memory beyond the arriving guest's.
  const auto available = meminfo_bytes("MemAvailable");
  const auto guest = guest_memory_bytes(qmp);
  const std::uint64_t in_memory = available && guest ? scratch_memory_budget(*available, *guest) : 0;
  auto index = UTSUSHI_TRY(ReceivedBlocks::create(k_max_indexed_blocks, std::nullopt, in_memory));
  std::unique_ptr<DiskSink> s(new DiskSink(qmp, std::move(disks), std::move(dir), std::move(index)));
  UTSUSHI_TRY(start_nbd_server(qmp, s->m_socket));
  s->m_server = true;
  for (std::size_t i = 0; i < matched.size(); ++i) {
    std::string id = fmt::format("livemig-{}-w{}", ::getpid(), i);
    UTSUSHI_TRY(export_disk(qmp, {id, matched[i].node, Access::writable, false, std::nullopt}));
    s->m_exports.push_back(id);
    s->m_files.push_back(matched[i].file);
    s->m_reports[i].node = matched[i].node;
    s->m_reports[i].file = matched[i].file;
    s->m_reports[i].size = s->m_sizes[i];
    s->m_clients.push_back(UTSUSHI_TRY(NbdClient::connect(s->m_socket, id)));
  }
  s->m_flusher = UTSUSHI_TRY(BackgroundFlusher::connect(s->m_socket, s->m_exports));
  std::vector<BackingIndexer::File> files;
  for (std::size_t i = 0; i < matched.size(); ++i) {
    files.push_back({matched[i].backing, s->m_disks[i].backing_format, s->m_disks[i].backing_hash});
  }
  s->m_indexer = std::make_unique<BackingIndexer>(std::move(files));
  return s;
}

DiskSink::~DiskSink() { abandon(); }

Result<void> DiskSink::write(std::span<const std::uint8_t> payload) {
  if (m_finished) {
    return fail(Errc::corruption, "livemig: disk data after the disks' end");
  }
  auto wire = UTSUSHI_TRY(decode_disk_batch(payload, m_sizes, m_dctx.get()));
  const std::uint64_t copied = copy_bytes(wire);
  DiskBatch batch = copied > 0 ? UTSUSHI_TRY(resolve_copies(wire, *this)) : std::move(wire);
  UTSUSHI_TRY(m_blocks.before_write(batch, [this](std::uint32_t d, std::uint64_t off, std::span<std::uint8_t> out) {
    return read_at(d, off, out);
  }));
  if (auto w = write_batch(m_clients[batch.disk], batch); !w) {
    // ENOSPC and the like: name the disk and the file that could not take it.
    std::string where = fmt::format("writing disk {} of the destination ({})", batch.disk, m_files[batch.disk]);
    if (w.error().sys_errno() == ENOSPC) {
      where += ": No space left on device";
    }
    return std::unexpected(std::move(w).error().with_context(where));
  }
  m_hashes[batch.disk].add(batch);
  m_blocks.after_write(batch);
  m_unflushed += batch.data.size();
  if (m_unflushed >= k_background_flush_bytes && m_flusher) {
    m_flusher->request();
    m_unflushed = 0;
  }
  DiskReport& rep = m_reports[batch.disk];
  rep.data_bytes += batch.data.size();
  rep.zero_bytes += zero_bytes(batch);
  rep.copied_bytes += copied;
  rep.wire_bytes += payload.size() + k_frame_header;
  rep.batches++;
  return {};
}

Result<void> DiskSink::finish(std::string_view end_text) {
  json end = json::parse(end_text, nullptr, false);
  if (!end.is_object() || !end.contains("hashes") || !end["hashes"].is_array() ||
      end["hashes"].size() != m_hashes.size()) {
    return fail(Errc::corruption, "livemig: the sender's disk end lists no hash per disk");
  }
  const auto t0 = steady_clock::now();
  std::uint64_t background_flushes = 0;
  if (m_flusher) {
    background_flushes = m_flusher->flushes();
    auto background = m_flusher->stop();
    m_flusher.reset();
    UTSUSHI_TRY_CTX(std::move(background), "flushing the destination's disks");
  }
  for (auto& c : m_clients) {
    UTSUSHI_TRY(c.flush());
  }
  UTSUSHI_LOG_DEBUG("disks flushed in {} ms ({} flushes before)",
                    duration_cast<milliseconds>(steady_clock::now() - t0).count(), background_flushes);
  for (std::size_t i = 0; i < m_hashes.size(); ++i) {
    m_reports[i].hash = m_hashes[i].hex();
    const json& h = end["hashes"][i];
    if (!h.is_string() || h.get<std::string>() != m_reports[i].hash) {
      return fail(Errc::corruption, fmt::format("disk {} ({}): what was written (hash {}) differs from what the "
                                                "source sent (hash {})",
                                                i, m_reports[i].node, m_reports[i].hash, h.dump()));
    }
  }
  m_finished = true;
  return {};
}

namespace {
Error block_after_close() {
  return Error(Errc::corruption, "livemig: a page refers to a disk block after the disks' exports were removed");
}
}  // namespace

Result<void> DiskSink::read_at(std::uint32_t disk, std::uint64_t offset, std::span<std::uint8_t> out) {
  if (disk >= m_clients.size()) {
    return std::unexpected(block_after_close());
  }
  return m_clients[disk].read(offset, out);
}

Result<void> DiskSink::read_blocks(std::span<const BlockFetch> fetches) {
  if (m_clients.empty()) {  // closed: not even the scratch copies answer
    return std::unexpected(block_after_close());
  }
  const auto t0 = steady_clock::now();
  m_referenced += fetches.size();
  struct Timed {
    steady_clock::time_point t0;
    steady_clock::duration& sum;
    ~Timed() { sum += steady_clock::now() - t0; }
  } timed{t0, m_reading};
  auto read = [this](std::uint32_t d, std::uint64_t off, std::span<std::uint8_t> o) {
    const auto r0 = steady_clock::now();
    auto r = read_at(d, off, o);
    m_export_reading += steady_clock::now() - r0;
    ++m_export_reads;
    return r;
  };
  // Blocks the batches carried need no backing index: no waiting for it.
  auto carried = m_blocks.read(fetches, read);
  if (carried || carried.error().code() != Errc::corruption) {
    return carried;  // (a hash nowhere in the batches' blocks fails before any read)
  }
  auto r = m_blocks.read(fetches, read, m_indexer->wait());
  if (!r && r.error().code() == Errc::corruption && m_indexer->first_error()) {
    return fail(Errc::corruption, fmt::format("{} (a backing file could not be indexed: {})", r.error().message(),
                                              m_indexer->first_error()->message()));
  }
  return r;
}

Result<void> DiskSink::remove_all() {
  if (m_referenced > 0) {
    UTSUSHI_LOG_DEBUG("{} referenced blocks read in {} ms, {} ms of it in {} reads through the exports "
                      "(scratch {} MiB, of which up to {} MiB in memory; {} contents only on the disks)",
                      m_referenced, duration_cast<milliseconds>(m_reading).count(),
                      duration_cast<milliseconds>(m_export_reading).count(), m_export_reads,
                      m_blocks.scratch_bytes() >> 20, m_blocks.scratch_memory_bytes() >> 20, m_blocks.on_disk());
    m_referenced = 0;
  }
  Result<void> first;
  if (m_flusher) {
    keep_first(first, m_flusher->stop());
    m_flusher.reset();
  }
  for (auto& c : m_clients) {
    keep_first(first, c.shutdown());
  }
  m_clients.clear();
  for (const auto& id : m_exports) {
    keep_first(first, remove_export(m_qmp, id));
  }
  m_exports.clear();
  stop_server(m_qmp, m_server, m_dir, first);
  return first;
}

void DiskSink::abandon() noexcept {
  if (auto r = remove_all(); !r) {
    UTSUSHI_LOG_WARN("removing the destination's disk exports: {}", r.error().message());
  }
}

}  // namespace utsushi::livemig
