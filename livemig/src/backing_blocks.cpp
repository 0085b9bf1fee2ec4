// The index of a backing image's blocks (backing_blocks.h).
#include "utsushi/livemig/backing_blocks.h"

#include <algorithm>
#include <chrono>

#include <fmt/core.h>

#include "utsushi/common/log.h"
#include "utsushi/common/shared_memo.h"
#include "utsushi/imagefmt/registry.h"
#include "utsushi/livemig/file_hash.h"

namespace utsushi::livemig {

namespace {

constexpr std::uint64_t k_chunk = 4u << 20;

bool hash_less(const BlockHash& a, const BlockHash& b) noexcept {
  return a.high != b.high ? a.high < b.high : a.low < b.low;
}

// The byte ranges to scan: the image's data extents, widened to k_ref_block
// boundaries (so that a block counts whatever the extents' granularity: a
// block is indexed exactly when it is not all zeros), merged where they meet.
std::vector<std::pair<std::uint64_t, std::uint64_t>> scan_ranges(const std::vector<imagefmt::Extent>& extents,
                                                                 std::uint64_t size) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  for (const auto& e : extents) {
    if (e.type != imagefmt::ExtentType::data) {
      continue;
    }
    std::uint64_t begin = e.offset / k_ref_block * k_ref_block;
    std::uint64_t end = std::min(size, (e.offset + e.length + k_ref_block - 1) / k_ref_block * k_ref_block);
    if (!out.empty() && begin <= out.back().second) {
      out.back().second = std::max(out.back().second, end);
    } else {
      out.emplace_back(begin, end);
    }
  }
  return out;
}

using Built = Result<std::shared_ptr<const BackingBlocks>>;
SharedMemo<std::string, std::shared_ptr<const BackingBlocks>> g_memo;

}  // namespace

BackingBlocks::BackingBlocks(std::string path, std::unique_ptr<imagefmt::BlockDevice> image,
                             std::vector<Entry> entries)
    : m_path(std::move(path)), m_image(std::move(image)), m_entries(std::move(entries)) {}

BackingBlocks::~BackingBlocks() = default;

Result<std::shared_ptr<const BackingBlocks>> BackingBlocks::build(const std::string& path, const std::string& format,
                                                                  std::stop_token stop, std::size_t cap) {
  imagefmt::OpenOptions options;
  options.format = format;
  auto image = UTSUSHI_TRY_CTX(imagefmt::open_image(path, options), "opening the backing file " + path);
  auto extents = UTSUSHI_TRY_CTX(image->extents(), "listing the extents of the backing file " + path);
  std::vector<Entry> entries;
  std::vector<std::uint8_t> buf(k_chunk);
  for (const auto& [begin, end] : scan_ranges(extents, image->size())) {
    for (std::uint64_t at = begin; at < end && entries.size() < cap; at += k_chunk) {
      if (stop.stop_requested()) {
        return fail(Errc::cancelled, "indexing the backing file " + path + ": stopped");
      }
      std::span<std::uint8_t> chunk(buf.data(), static_cast<std::size_t>(std::min(k_chunk, end - at)));
      UTSUSHI_TRY_CTX(image->pread(chunk, at), "reading the backing file " + path);
      for_each_counted_block(at, chunk, [&](std::uint64_t off, const std::uint8_t* block) {
        if (entries.size() < cap) {
          entries.push_back({block_hash(block), off, block_anchor(block)});
        }
      });
    }
  }
  // Stable: of the entries with one hash, the first kept is the lowest offset.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return hash_less(a.hash, b.hash); });
  entries.erase(std::unique(entries.begin(), entries.end(),
                            [](const Entry& a, const Entry& b) { return a.hash == b.hash; }),
                entries.end());
  entries.shrink_to_fit();
  return std::shared_ptr<const BackingBlocks>(new BackingBlocks(path, std::move(image), std::move(entries)));
}

Result<std::shared_ptr<const BackingBlocks>> BackingBlocks::of_file(const std::string& path,
                                                                    const std::string& format,
                                                                    const std::string& content_hash,
                                                                    std::stop_token stop) {
  // A build its own caller stopped is built again for another.
  auto stopped_for_them = [&](const Built& b) {
    return !b && b.error().code() == Errc::cancelled && !stop.stop_requested();
  };
  auto compute = [&]() -> Built {
    try {
      if (auto cached = from_cache(path, format, content_hash)) {
        return std::move(*cached);
      }
      auto built = build(path, format, stop);
      if (built) {
        cache_block_index(format, content_hash, k_max_backing_blocks, (*built)->m_entries);
      }
      return built;
    } catch (const std::exception& e) {  // bad_alloc: waiters must still get an answer
      return fail(Errc::internal, fmt::format("indexing the backing file {}: {}", path, e.what()));
    }
  };
  return g_memo.get(format + ":" + content_hash, compute, [](const Built&) { return true; }, stopped_for_them);
}

std::optional<std::shared_ptr<const BackingBlocks>> BackingBlocks::from_cache(const std::string& path,
                                                                               const std::string& format,
                                                                               const std::string& content_hash) {
  if (disk_cache_dir().empty()) {
    return std::nullopt;
  }
  imagefmt::OpenOptions options;
  options.format = format;
  auto image = imagefmt::open_image(path, options);
  if (!image) {
    return std::nullopt;  // build() says why
  }
  auto entries = cached_block_index(format, content_hash, k_max_backing_blocks, (*image)->size());
  if (!entries) {
    return std::nullopt;
  }
  UTSUSHI_LOG_DEBUG("{}: the index of its content from the disk cache", path);
  return std::shared_ptr<const BackingBlocks>(new BackingBlocks(path, std::move(*image), std::move(*entries)));
}

std::optional<std::uint64_t> BackingBlocks::find(const BlockHash& h) const noexcept {
  auto it = std::lower_bound(m_entries.begin(), m_entries.end(), h,
                             [](const Entry& e, const BlockHash& v) { return hash_less(e.hash, v); });
  if (it == m_entries.end() || !(it->hash == h)) {
    return std::nullopt;
  }
  return it->offset;
}

Result<void> BackingBlocks::read(std::uint64_t offset, std::span<std::uint8_t> out) const {
  UTSUSHI_TRY_CTX(m_image->pread(out, offset), "reading the backing file " + m_path);
  return {};
}

BackingIndexer::BackingIndexer(std::vector<File> files, OnReady on_ready)
    : m_indexes(files.size()),
      m_thread([this, files = std::move(files), on_ready = std::move(on_ready)](std::stop_token stop) {
        run(stop, files, on_ready);
      }) {}

void BackingIndexer::run(std::stop_token stop, const std::vector<File>& files, const OnReady& on_ready) {
  for (std::size_t d = 0; d < files.size(); ++d) {
    if (files[d].path.empty()) {
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    Result<std::string> hash = files[d].content_hash;
    if (hash->empty()) {
      hash = file_content_hash(files[d].path);
    }
    auto index = hash ? BackingBlocks::of_file(files[d].path, files[d].format, *hash, stop)
                      : Built(std::unexpected(hash.error()));
    if (!index) {
      if (index.error().code() != Errc::cancelled) {
        UTSUSHI_LOG_WARN("{}: blocks cannot be referred to: {}", files[d].path, index.error().message());
      }
      if (!m_error) {
        m_error = std::move(index).error();
      }
      continue;
    }
    UTSUSHI_LOG_DEBUG("{}: {} blocks indexed in {} ms", files[d].path, (*index)->size(),
                      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                          .count());
    m_indexes[d] = *index;
    if (on_ready) {
      on_ready(d, m_indexes[d]);
    }
  }
}

std::span<const std::shared_ptr<const BackingBlocks>> BackingIndexer::wait() {
  if (m_thread.joinable()) {
    m_thread.join();
  }
  return m_indexes;
}

}  // namespace utsushi::livemig
