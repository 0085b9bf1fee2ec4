#include "utsushi/disk/verify.h"

#include <xxhash.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "utsushi/common/cancel.h"

namespace utsushi::disk {
namespace {

constexpr std::uint64_t k_chunk = 4u << 20;

}  // namespace

Result<VerifyStats> verify_ranges(imagefmt::BlockDevice& expected, imagefmt::BlockDevice& actual,
                                  const ByteRanges& ranges, unsigned threads, ProgressFn progress) {
  std::vector<ByteRange> chunks;
  for (const ByteRange& r : ranges.ranges()) {
    UTSUSHI_TRY(expected.check_range(r.offset, r.length, "verify"));
    UTSUSHI_TRY(actual.check_range(r.offset, r.length, "verify"));
    for (std::uint64_t off = r.offset; off < r.end(); off += k_chunk) {
      chunks.push_back({off, std::min(k_chunk, r.end() - off)});
    }
  }
  const std::uint64_t total = ranges.total();
  unsigned n = threads ? threads : std::max(4u, std::thread::hardware_concurrency());
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::optional<Error> first_error;
  auto record = [&](Error e) {
    std::lock_guard lock(mu);
    if (!first_error) {
      first_error = std::move(e);
    }
    failed = true;
  };
  auto worker = [&] {
    std::vector<std::uint8_t> a(k_chunk), b(k_chunk);
    for (std::size_t i = next++; i < chunks.size() && !failed; i = next++) {
      if (auto c = check_cancelled(); !c) {
        record(std::move(c).error());
        return;
      }
      const ByteRange& c = chunks[i];
      auto sa = std::span(a).first(static_cast<std::size_t>(c.length));
      auto sb = std::span(b).first(static_cast<std::size_t>(c.length));
      if (auto r = expected.pread(sa, c.offset); !r) {
        record(std::move(r).error());
        return;
      }
      if (auto r = actual.pread(sb, c.offset); !r) {
        record(std::move(r).error());
        return;
      }
      if (XXH64(sa.data(), sa.size(), 0) != XXH64(sb.data(), sb.size(), 0)) {
        record(Error(Errc::corruption, "verify: " + actual.description() + " differs from " +
                                           expected.description() + " in the chunk at byte " +
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

}  // namespace utsushi::disk
