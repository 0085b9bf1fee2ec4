#pragma once
// livemig's disk pre-copy inside one migration session (send/receive
// --copy-storage; docs/ARCHITECTURE.md, "livemig: disks"). The frames
// (frame.h) in the order the sender sends them:
//   disks      JSON [{node, qdev, size, file, format, backing,
//              backing_format, backing_hash, allocated}]: the disks, in the
//              order disk ids (disk_message.h) refer to them (protocol 9;
//              every field checked: parse_disk_list);
//   disk_data  batches of pass 0 ("bulk": the top images), then of dirty
//              passes, before QEMU's migration starts; then, between the
//              memory stream's DATA frames, dirty passes ("follow") while
//              QEMU's memory passes run;
//   disk_data  batches of the final pass, sent while the source waits in
//              pre-switchover (guest stopped, disks still its own);
//   disk_end   JSON {hashes: [hex per disk]}: each disk's DiskWriteHash
//              (disk_hash.h) of every range sent; the source's exports and
//              bitmaps are gone before QEMU continues its switch-over.
// The receiver writes each batch to its destination QEMU through a writable
// export (the destination was started with -incoming defer) and hashes what
// it wrote; on disk_end it flushes and compares: a mismatch ends the migration
// before "ready" (the source resumes, the destination is discarded). Memory
// pages may refer to blocks the batches carried (block_index.h) up to the
// stream's end, so the exports stay until then: close() removes them before
// the destination gets the stream's last batch (and with it QEMU_VM_EOF).
//
// Not thread-safe: one thread drives a DiskSource or DiskSink (another may
// read DiskSource::progress()).

#include <zstd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "utsushi/common/error.h"
#include "utsushi/common/handles.h"
#include "utsushi/common/private_dir.h"
#include "utsushi/livemig/batch_compressor.h"
#include "utsushi/livemig/background_flush.h"
#include "utsushi/livemig/backing_blocks.h"
#include "utsushi/livemig/block_index.h"
#include "utsushi/livemig/disk_exports.h"
#include "utsushi/livemig/disk_hash.h"
#include "utsushi/livemig/frame.h"
#include "utsushi/livemig/monitor.h"
#include "utsushi/livemig/nbd_client.h"
#include "utsushi/livemig/report.h"

namespace utsushi::livemig {

// One disk of the session, as the sender announces it.
struct SessionDisk {
  std::string node;  // the top node on the source
  std::string qdev;  // the guest device (query-block "qdev"): how the receiver finds its own node
  std::uint64_t size = 0;
  std::string file;            // the top image file on the source (absolute)
  std::string format;          // the top image's format: "qcow2" or "raw"
  std::string backing;         // its backing file on the source, absolute ("": none)
  std::string backing_format;  // "qcow2" or "raw" ("" iff no backing)
  std::string backing_hash;    // file_content_hash (file_hash.h) of the backing ("" iff none)
  // Bytes the top image's file takes on the source host (query-block's
  // "actual-size"; 0 when QEMU does not say): what a receiver that creates
  // the image needs free at least (disk_images.h, check_free_space).
  std::uint64_t allocated = 0;

  friend bool operator==(const SessionDisk&, const SessionDisk&) = default;
};

// Limits of a disk list frame (parse_disk_list).
inline constexpr std::size_t k_max_session_disks = 256;
inline constexpr std::size_t k_max_disk_name = 512;    // node, qdev
inline constexpr std::size_t k_max_disk_path = 4096;   // file, backing (PATH_MAX)
inline constexpr std::uint64_t k_max_session_disk_size = 1ull << 60;  // 1 EiB

// The disks of a query-block reply that `drives` names: node names, block
// device names or qdev ids, or the one word "all" for every disk with a
// medium that is writable and whose image is a local file (not nbd:, json:
// or another protocol). Errc::invalid_argument for a name that matches no
// disk, a read-only disk, or "all" that finds none; Errc::not_supported for
// a chosen disk whose image (or backing file) is neither qcow2 nor raw or not
// a local file. Fills every field but backing_hash.
[[nodiscard]] Result<std::vector<SessionDisk>> select_disks(const nlohmann::json& query_block,
                                                            const std::vector<std::string>& drives);

// select_disks on the source QEMU's query-block, with each backing file's
// content hash (file_content_hash) filled in.
[[nodiscard]] Result<std::vector<SessionDisk>> source_disks(Monitor& qmp, const std::vector<std::string>& drives);

// One destination disk that match_disks found.
struct MatchedDisk {
  std::string node;  // the destination's top node
  std::string file;  // its image file
  std::string backing;  // its backing file as QEMU resolved it ("": none)
};

// Receiver: the destination's top node for each announced disk, found by its
// qdev (else by its node name); the disk must be writable and of the same
// virtual size and format, and have a backing file exactly when the source's
// has one. Errc::failed_precondition names the disk that does not match.
[[nodiscard]] Result<std::vector<MatchedDisk>> match_disks(const nlohmann::json& query_block,
                                                           const std::vector<SessionDisk>& disks);

// Receiver, before a sender comes: hashes and indexes the backing files of
// the destination QEMU's writable disks on a thread of its own, so that a
// session's check_backings and backing index find the work done or under way
// (file_content_hash and BackingBlocks::of_file remember results and wait for
// one in progress). Null when no disk has a local backing file; errors are
// the session's to report.
[[nodiscard]] std::unique_ptr<BackingIndexer> warm_backings(Monitor& qmp);

// Receiver: every disk's backing file (`backings[i]` on this host, for
// disks[i]; "" where the disk has none) exists and has the content hash the
// sender announced. Errc::failed_precondition naming the disk and the file.
[[nodiscard]] Result<void> check_backings(const std::vector<SessionDisk>& disks,
                                          const std::vector<std::string>& backings);

enum class EmptyList { refused, allowed };
[[nodiscard]] std::string disks_frame_text(const std::vector<SessionDisk>& disks);
// Errc::corruption for a payload that is not such a list: not JSON, more
// than k_max_session_disks entries (or none, unless `empty` allows it), an
// entry with a missing, extra or ill-typed field, a size of 0, not a
// multiple of 512 or above k_max_session_disk_size, a name or path that is
// too long or holds a control character, a path that is not absolute, a
// format other than qcow2/raw, a backing hash that is not 32 hex digits, or
// backing fields that are not all set or all empty.
[[nodiscard]] Result<std::vector<SessionDisk>> parse_disk_list(std::string_view text,
                                                              EmptyList empty = EmptyList::refused);
[[nodiscard]] inline Result<std::vector<SessionDisk>> parse_disks_frame(std::string_view text) {
  return parse_disk_list(text, EmptyList::refused);
}

// Disk frames between a pass's reader and its shipper: 8 batches of at most
// 4 MiB data each (BatchLimits), ~1 s of a 32 MiB/s link.
inline constexpr std::size_t k_disk_ship_queue = 8;

// Hands one frame to the link (the sender serialises it with the pump's shipper).
using FrameSend = std::function<Result<void>(FrameType, std::span<const std::uint8_t>)>;

// Source side: an NBD server and a DirtyTracker per disk on the source QEMU.
// The destructor removes what stop() did not (errors ignored).
class DiskSource {
 public:
  // Starts the NBD server (a UNIX socket in a PrivateDir under $TMPDIR or /tmp)
  // and the trackers (recording from now on). The batches are compressed
  // (disk_message.h's codec) at a zstd level in [min_level, max_level] that
  // follows the bottleneck as the memory stream's does (batch_compressor.h;
  // min == max pins it), learned across passes.
  [[nodiscard]] static Result<std::unique_ptr<DiskSource>> open(Monitor& qmp, std::vector<SessionDisk> disks,
                                                                int min_level, int max_level);
  ~DiskSource();
  DiskSource(const DiskSource&) = delete;
  DiskSource& operator=(const DiskSource&) = delete;

  const std::vector<SessionDisk>& disks() const noexcept { return m_disks; }
  // Sends every disk's ranges of its current pass (the first call: pass 0,
  // the top image's allocation; later ones: after next_pass(), the dirty
  // ranges) as disk_data frames: reading and compressing on this thread,
  // `send` called on a shipper's (shipper.h), at most k_disk_ship_queue
  // frames between them; it returns when the last frame was sent. Returns the pass's data bytes. Consecutive
  // passes of one `phase` add up in one phases() entry.
  [[nodiscard]] Result<std::uint64_t> send_pass(const FrameSend& send, const std::string& phase);
  // How far send_pass is; another thread may read it while send_pass runs.
  struct PassProgress {
    std::atomic<bool> listed{false};             // every disk's ranges of the pass are known;
    std::atomic<std::uint64_t> data_bytes{0};    // then: the data bytes the pass reads in all
    std::atomic<std::uint64_t> sent_bytes{0};    // of those, in frames the link has taken
  };
  const PassProgress& progress() const noexcept { return m_progress; }
  // Opens the next pass on every disk (bitmaps swapped in one transaction each).
  [[nodiscard]] Result<void> next_pass();
  // The disk_end frame (the hashes so far).
  [[nodiscard]] Result<void> send_end(const FrameSend& send);
  // Removes every export, bitmap and the NBD server; idempotent (all are
  // tried, the first error is returned).
  [[nodiscard]] Result<void> stop();

  const std::vector<DiskReport>& reports() const noexcept { return m_reports; }
  const std::vector<DiskPhaseReport>& phases() const noexcept { return m_phases; }
  // The blocks the link has carried so far (block_index.h), for the pump.
  const SentBlocks& sent_blocks() const noexcept { return m_sent; }

 private:
  DiskSource(Monitor& qmp, std::vector<SessionDisk> disks, PrivateDir dir, int min_level, int max_level);
  // One disk's part of a pass: its export's client and the ranges to send.
  struct PassDisk {
    NbdClient client;
    std::vector<DiskRange> ranges;
  };
  // Connects to every disk's export of the current pass and lists its ranges
  // (m_progress.listed from then on).
  [[nodiscard]] Result<std::vector<PassDisk>> list_pass();

  Monitor& m_qmp;
  std::vector<SessionDisk> m_disks;
  PrivateDir m_dir;  // holds the NBD socket; removed by stop()
  std::string m_socket;
  bool m_server = false;
  std::vector<DirtyTracker> m_trackers;
  std::vector<DiskWriteHash> m_hashes;
  std::vector<DiskReport> m_reports;
  std::vector<DiskPhaseReport> m_phases;
  ZstdCCtx m_cctx{ZSTD_createCCtx()};
  LevelController m_levels;
  int m_level = 0;  // m_cctx's level
  SentBlocks m_sent;
  PassProgress m_progress;
  std::unique_ptr<BackingIndexer> m_indexer;  // adds the backing files to m_sent
};

// Destination side: a writable export per disk of the destination QEMU and a
// client writing into it; the source of the memory stream's disk references.
// The destructor removes what close() did not.
class DiskSink final : public BlockSource {
 public:
  // Matches the announced disks (match_disks), checks their backing files
  // (check_backings), starts the NBD server and the exports and connects.
  [[nodiscard]] static Result<std::unique_ptr<DiskSink>> open(Monitor& qmp, std::vector<SessionDisk> disks);
  ~DiskSink();
  DiskSink(const DiskSink&) = delete;
  DiskSink& operator=(const DiskSink&) = delete;

  // Decodes one disk_data payload (every field checked: disk_message.h),
  // writes it and adds it to the disk's hash.
  [[nodiscard]] Result<void> write(std::span<const std::uint8_t> payload);
  // disk_end: flushes (after the background flusher's last flush, which
  // kept what is left to write back small), compares each disk's hash with the sender's
  // (Errc::corruption names the disk that differs). The exports stay, for
  // read_blocks, until close().
  [[nodiscard]] Result<void> finish(std::string_view end_text);
  bool finished() const noexcept { return m_finished; }
  // BlockSource: a block the batches carried (from the scratch copy, else
  // read through the export, or kept aside when overwritten since), or a
  // block of a backing file (the first call waits until they are indexed);
  // Errc::corruption after close().
  [[nodiscard]] Result<void> read_blocks(std::span<const BlockFetch> fetches) override;
  // Disconnects and removes the exports and the server (after finish()).
  [[nodiscard]] Result<void> close() { return remove_all(); }
  // Removes exports and server (best effort; after a failure).
  void abandon() noexcept;

  const std::vector<DiskReport>& reports() const noexcept { return m_reports; }

 private:
  DiskSink(Monitor& qmp, std::vector<SessionDisk> disks, PrivateDir dir, ReceivedBlocks blocks);
  [[nodiscard]] Result<void> remove_all();
  [[nodiscard]] Result<void> read_at(std::uint32_t disk, std::uint64_t offset, std::span<std::uint8_t> out);

  Monitor& m_qmp;
  std::vector<SessionDisk> m_disks;
  std::vector<std::uint64_t> m_sizes;
  std::vector<std::string> m_files;  // the destination's image files, for messages
  PrivateDir m_dir;  // holds the NBD socket
  std::string m_socket;
  bool m_server = false;
  bool m_finished = false;
  std::vector<std::string> m_exports;
  std::vector<NbdClient> m_clients;
  std::vector<DiskWriteHash> m_hashes;
  std::vector<DiskReport> m_reports;
  ZstdDCtx m_dctx{ZSTD_createDCtx()};
  ReceivedBlocks m_blocks;
  std::unique_ptr<BackgroundFlusher> m_flusher;  // until finish() or remove_all()
  std::uint64_t m_unflushed = 0;                 // bytes written since the last flush request
  std::unique_ptr<BackingIndexer> m_indexer;     // the backing files' blocks, for read_blocks
  std::uint64_t m_referenced = 0;                // blocks read_blocks was asked for
  std::chrono::steady_clock::duration m_reading{};  // and the time it took,
  std::chrono::steady_clock::duration m_export_reading{};  // of which reading through the exports
  std::uint64_t m_export_reads = 0;
};

}  // namespace utsushi::livemig
