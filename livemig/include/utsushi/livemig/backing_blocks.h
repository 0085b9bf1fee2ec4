#pragma once
// The blocks of a disk's backing file that memory pages and disk batches may
// refer to (protocol 7; docs/ARCHITECTURE.md, "livemig: disks"). A guest whose disk
// is an overlay over a golden image holds much of that image in its page
// cache (binaries, libraries, data read since boot). Both ends hold the same
// backing file (disk_session.h checks its content hash before anything is
// sent), so such a page travels as a `disk` reference (page_codec.h) without
// a disk pass ever carrying the block.
//
// The indexed blocks of a backing image: every block of k_ref_block bytes
// aligned on the image's virtual disk that is not all zeros, of the first
// k_max_backing_blocks such blocks in offset order. A content found at several
// places is indexed at its first. The set depends only on the image's content,
// so both ends, indexing their byte-identical copies, agree on it; and a
// backing file does not change while it backs a disk, so an index entry
// resolves to its content for the whole session, whatever the overlay above
// it receives.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/livemig/block_index.h"
#include "utsushi/livemig/disk_cache.h"

namespace utsushi::imagefmt {
class BlockDevice;
}

namespace utsushi::livemig {

// 4 GiB of content; the index keeps 32 bytes per block.
inline constexpr std::size_t k_max_backing_blocks = std::size_t{1} << 20;

class BackingBlocks {
 public:
  // Opens the image at `path` (format "qcow2" or "raw") read-only and indexes
  // it. Errc::cancelled when `stop` is requested before it is done.
  [[nodiscard]] static Result<std::shared_ptr<const BackingBlocks>> build(const std::string& path,
                                                                          const std::string& format,
                                                                          std::stop_token stop = {},
                                                                          std::size_t cap = k_max_backing_blocks);
  // build(), once per content: a later call with the same `content_hash`
  // (file_hash.h) and format returns the same index (an evacuation of many
  // guests over one golden image reads it once per process), and one made
  // while another thread builds it waits for that build. With the disk cache
  // on (disk_cache.h), an index remembered there is used instead of a build,
  // and a build is remembered there.
  [[nodiscard]] static Result<std::shared_ptr<const BackingBlocks>> of_file(const std::string& path,
                                                                            const std::string& format,
                                                                            const std::string& content_hash,
                                                                            std::stop_token stop = {});
  ~BackingBlocks();
  BackingBlocks(const BackingBlocks&) = delete;
  BackingBlocks& operator=(const BackingBlocks&) = delete;

  // Where the image holds `h` (an offset on its virtual disk).
  [[nodiscard]] std::optional<std::uint64_t> find(const BlockHash& h) const noexcept;
  // Reads [offset, offset + out.size()) of the image. Thread-safe (the image's
  // BlockDevice serialises what its driver needs serialised).
  [[nodiscard]] Result<void> read(std::uint64_t offset, std::span<std::uint8_t> out) const;
  std::size_t size() const noexcept { return m_entries.size(); }
  // Every indexed block, sorted by hash.
  std::span<const IndexedBlock> entries() const noexcept { return m_entries; }
  const std::string& path() const noexcept { return m_path; }

 private:
  using Entry = IndexedBlock;
  BackingBlocks(std::string path, std::unique_ptr<imagefmt::BlockDevice> image, std::vector<Entry> entries);
  // The index of `path` remembered in the disk cache (disk_cache.h), if any.
  static std::optional<std::shared_ptr<const BackingBlocks>> from_cache(const std::string& path,
                                                                        const std::string& format,
                                                                        const std::string& content_hash);

  std::string m_path;
  std::unique_ptr<imagefmt::BlockDevice> m_image;
  std::vector<Entry> m_entries;  // sorted by hash, one per content
};

// Indexes a session's backing files on a thread of its own, while the first
// disk pass runs. The destructor asks the thread to stop and waits for it (a
// build stops between chunks; a file hash, or a build another indexer is
// running, is waited for).
class BackingIndexer {
 public:
  // One per disk of the session: its backing file, or an empty path when it
  // has none.
  struct File {
    std::string path;
    std::string format;
    std::string content_hash;  // file_hash.h; empty: the indexer hashes the file first
  };
  using OnReady = std::function<void(std::size_t disk, const std::shared_ptr<const BackingBlocks>&)>;
  // `on_ready`, when set, is called on the indexer's thread as each disk's
  // index is done (BackingBlocks::of_file: a content is indexed once).
  explicit BackingIndexer(std::vector<File> files, OnReady on_ready = {});
  ~BackingIndexer() = default;
  BackingIndexer(const BackingIndexer&) = delete;
  BackingIndexer& operator=(const BackingIndexer&) = delete;

  // Waits for the thread: each disk's index, null where the disk has no
  // backing file or its index could not be built (first_error() says why).
  // Called by one thread at a time.
  [[nodiscard]] std::span<const std::shared_ptr<const BackingBlocks>> wait();
  // After wait(): why the first index that could not be built failed.
  const std::optional<Error>& first_error() const noexcept { return m_error; }

 private:
  void run(std::stop_token stop, const std::vector<File>& files, const OnReady& on_ready);

  std::vector<std::shared_ptr<const BackingBlocks>> m_indexes;
  std::optional<Error> m_error;  // written by the thread before it ends
  std::jthread m_thread;         // last: it ends before what it writes goes
};

}  // namespace utsushi::livemig
