// --verify: every used range of the source against the image, by chunk hash.
#include <xxhash.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "utsushi/common/cancel.h"
#include "utsushi/imagefmt/raw.h"
#include "utsushi/imagefmt/registry.h"
#include "utsushi/p2v/capture.h"

namespace utsushi::p2v {
namespace {

constexpr std::uint64_t k_chunk = 4u << 20;

}  // namespace

Result<VerifyStats> verify_image(imagefmt::BlockDevice& source, const disk::ByteRanges& used, const std::string& image_path,
                                 unsigned threads, ProgressFn progress) {
  auto image = UTSUSHI_TRY(imagefmt::open_image(image_path));
  // A block device written in place may be larger than the source.
  const bool larger_device_ok = imagefmt::is_block_device(image_path) && image->size() > source.size();
  if (image->size() != source.size() && !larger_device_ok) {
    return fail(Errc::corruption, "verify: " + image_path + " has " + std::to_string(image->size()) +
                                      " bytes but the source has " + std::to_string(source.size()));
  }
  std::vector<disk::ByteRange> chunks;
  for (const disk::ByteRange& r : used.ranges()) {
    for (std::uint64_t off = r.offset; off < r.end(); off += k_chunk) {
      chunks.push_back({off, std::min(k_chunk, r.end() - off)});
    }
  }
  const std::uint64_t total = used.total();
  unsigned n = threads ? threads : std::max(4u, std::thread::hardware_concurrency());
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> done{0};
  std::mutex mu;
  std::optional<Error> first_error;
  auto record = [&](Error e) {
    std::lock_guard lock(mu);
    if (!first_error) {
      first_error = std::move(e);
    }
  };
  auto worker = [&] {
    std::vector<std::uint8_t> a(k_chunk), b(k_chunk);
    for (std::size_t i = next++; i < chunks.size(); i = next++) {
      {
        std::lock_guard lock(mu);
        if (first_error) {
          return;
        }
      }
      if (auto c = check_cancelled(); !c) {
        record(std::move(c).error());
        return;
      }
      const disk::ByteRange& c = chunks[i];
      auto sa = std::span(a).first(static_cast<std::size_t>(c.length));
      auto sb = std::span(b).first(static_cast<std::size_t>(c.length));
      if (auto r = source.pread(sa, c.offset); !r) {
        record(std::move(r).error());
        return;
      }
      if (auto r = image->pread(sb, c.offset); !r) {
        record(std::move(r).error());
        return;
      }
      if (XXH64(sa.data(), sa.size(), 0) != XXH64(sb.data(), sb.size(), 0)) {
        record(Error(Errc::corruption, "verify: " + image_path + " differs from the source in the chunk at byte " +
                                           std::to_string(c.offset)));
        return;
      }
      std::uint64_t now = done += c.length;
      if (progress) {
        progress(now, total);
      }
    }
  };
  {
    std::vector<std::jthread> pool;
    for (unsigned t = 1; t < n; ++t) {
      pool.emplace_back(worker);
    }
    worker();
  }
  if (first_error) {
    return std::unexpected(std::move(*first_error));
  }
  return VerifyStats{chunks.size(), total};
}

}  // namespace utsushi::p2v
