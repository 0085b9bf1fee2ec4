// Whole-file content hashes, remembered per file version (file_hash.h).
#include "utsushi/livemig/file_hash.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "utsushi/common/fd.h"
#include "utsushi/common/shared_memo.h"
#include "utsushi/livemig/disk_cache.h"

namespace utsushi::livemig {

namespace {

constexpr std::size_t k_chunk = 4 << 20;

// What identifies one version of a file's content: device, inode, size,
// modification and change times.
using FileKey = std::tuple<dev_t, ino_t, off_t, std::int64_t, long, std::int64_t, long>;

// File times are kept at the kernel's coarse clock (a jiffy): a file changed
// within that long of a hash could keep its times. Hashes of files younger
// than this are not remembered.
constexpr std::int64_t k_settled_seconds = 2;

bool settled(const struct stat& st) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return now.tv_sec - std::max(st.st_mtim.tv_sec, st.st_ctim.tv_sec) > k_settled_seconds;
}

struct HashState {
  struct Free {
    void operator()(XXH3_state_t* s) const noexcept { XXH3_freeState(s); }
  };
  std::unique_ptr<XXH3_state_t, Free> state{XXH3_createState()};
};

// Feeds `length` zero bytes.
void hash_zeros(XXH3_state_t* st, std::uint64_t length) {
  static const std::vector<std::uint8_t> zeros(k_chunk, 0);
  while (length > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(length, zeros.size()));
    XXH3_128bits_update(st, zeros.data(), n);
    length -= n;
  }
}

// Feeds [offset, end) read from `fd`.
Result<void> hash_data(int fd, XXH3_state_t* st, std::uint64_t offset, std::uint64_t end, std::vector<std::uint8_t>& buf,
                       const std::string& path) {
  while (offset < end) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(end - offset, buf.size()));
    UTSUSHI_TRY(pread_full(fd, std::span(buf.data(), n), offset, path));
    XXH3_128bits_update(st, buf.data(), n);
    offset += n;
  }
  return {};
}

Result<std::string> hash_open_file(int fd, std::uint64_t size, const std::string& path) {
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  HashState h;
  XXH3_128bits_reset(h.state.get());
  std::vector<std::uint8_t> buf(k_chunk);
  std::uint64_t at = 0;
  while (at < size) {
    FileRun run = UTSUSHI_TRY(next_file_run(fd, at, size, path));
    if (run.data) {
      UTSUSHI_TRY(hash_data(fd, h.state.get(), at, run.end, buf, path));
    } else {
      hash_zeros(h.state.get(), run.end - at);
    }
    at = run.end;
  }
  XXH128_hash_t d = XXH3_128bits_digest(h.state.get());
  return fmt::format("{:016x}{:016x}", d.high64, d.low64);
}

SharedMemo<FileKey, std::string> g_memo;

}  // namespace

Result<std::string> file_content_hash(const std::string& path) {
  auto fd = UTSUSHI_TRY(open_fd(path, O_RDONLY));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return std::unexpected(errno_error(errno, path));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(Errc::invalid_argument, fmt::format("{} is {}, not a regular file", path, file_type_name(st.st_mode)));
  }
  FileKey key{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec,
              st.st_ctim.tv_nsec};
  auto hash = [&] { return hash_open_file(fd.get(), static_cast<std::uint64_t>(st.st_size), path); };
  if (!settled(st)) {
    return hash();  // its times may not have moved yet: hashed every time
  }
  const FileVersion version{st.st_dev, st.st_ino, static_cast<std::uint64_t>(st.st_size), st.st_mtim.tv_sec,
                            st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
  auto remembered = [&]() -> Result<std::string> {
    if (auto cached = cached_file_hash(version)) {
      return *cached;
    }
    auto h = hash();
    if (h) {
      cache_file_hash(version, *h);
    }
    return h;
  };
  return g_memo.get(key, remembered, [](const Result<std::string>&) { return true; });
}

}  // namespace utsushi::livemig
