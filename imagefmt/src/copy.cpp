#include "utsushi/imagefmt/copy.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "utsushi/common/cancel.h"
#include "utsushi/common/zero.h"

namespace utsushi::imagefmt {
namespace {

struct Chunk {
  std::uint64_t offset;
  std::uint64_t length;
  bool known_zero;  // from extents: no need to read
  bool hole;        // a hole (not a zero extent): may be discarded
};

std::vector<Chunk> plan_chunks(const std::vector<Extent>& extents, std::size_t chunk_size) {
  std::vector<Chunk> chunks;
  for (const Extent& e : extents) {
    bool zero = e.type != ExtentType::data;
    if (zero) {
      chunks.push_back({e.offset, e.length, true, e.type == ExtentType::hole});
      continue;
    }
    for (std::uint64_t off = e.offset; off < e.offset + e.length; off += chunk_size) {
      chunks.push_back({off, std::min<std::uint64_t>(chunk_size, e.offset + e.length - off), false, false});
    }
  }
  return chunks;
}

}  // namespace

Result<CopyStats> copy_device(BlockDevice& source, BlockDevice& target, const CopyOptions& options) {
  if (source.size() != target.size()) {
    return fail(Errc::invalid_argument, "copy: " + source.description() + " has " + std::to_string(source.size()) +
                                            " bytes but " + target.description() + " has " +
                                            std::to_string(target.size()));
  }
  std::size_t chunk_size = std::max<std::size_t>(options.chunk_size, 4096);
  auto extents = UTSUSHI_TRY(source.extents());
  const std::vector<Chunk> chunks = plan_chunks(extents, chunk_size);

  unsigned threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min<unsigned>(threads, static_cast<unsigned>(std::max<std::size_t>(chunks.size(), 1)));

  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> done{0}, read{0}, written{0}, zero{0}, discarded{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::optional<Error> first_error;
  const std::uint64_t total = source.size();

  auto record_error = [&](Error e) {
    std::lock_guard lock(error_mutex);
    if (!first_error) {
      first_error = std::move(e);
    }
    failed = true;
  };

  auto worker = [&] {
    std::vector<std::uint8_t> buf(chunk_size);
    while (!failed) {
      std::size_t i = next.fetch_add(1);
      if (i >= chunks.size()) {
        return;
      }
      if (auto c = check_cancelled(); !c) {
        record_error(std::move(c).error());
        return;
      }
      const Chunk& c = chunks[i];
      bool is_zero = c.known_zero;
      if (!is_zero) {
        auto span = std::span(buf).first(static_cast<std::size_t>(c.length));
        if (auto r = source.pread(span, c.offset); !r) {
          record_error(std::move(r).error());
          return;
        }
        read += c.length;
        is_zero = is_all_zero(span);
        if (!is_zero) {
          if (auto w = target.pwrite(span, c.offset); !w) {
            record_error(std::move(w).error());
            return;
          }
          written += c.length;
        }
      }
      if (is_zero) {
        zero += c.length;
        if (!options.target_is_zeroed && options.discard_holes && c.hole) {
          if (auto d = target.discard(c.offset, c.length); !d) {
            record_error(std::move(d).error());
            return;
          }
          discarded += c.length;
        } else if (!options.target_is_zeroed) {
          if (auto z = target.zero(c.offset, c.length, ZeroMode::may_unmap); !z) {
            record_error(std::move(z).error());
            return;
          }
        }
      }
      std::uint64_t now = done += c.length;
      if (options.progress) {
        options.progress(now, total);
      }
    }
  };

  std::vector<std::jthread> pool;
  for (unsigned t = 1; t < threads; ++t) {
    pool.emplace_back(worker);
  }
  worker();
  pool.clear();  // joins

  if (first_error) {
    return std::unexpected(std::move(*first_error));
  }
  if (options.flush) {
    UTSUSHI_TRY(target.flush());
  }
  return CopyStats{read.load(), written.load(), zero.load(), discarded.load()};
}

}  // namespace utsushi::imagefmt
