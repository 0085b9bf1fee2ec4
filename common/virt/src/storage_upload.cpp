// upload_volume (storage.h): a local file streamed into a new volume.
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "utsushi/common/cancel.h"
#include "utsushi/common/fd.h"
#include "utsushi/common/log.h"
#include "utsushi/virt/libvirt_error.h"
#include "utsushi/virt/storage.h"

namespace utsushi::virt {

namespace {

constexpr std::size_t k_chunk = 1 << 20;

// Sends the whole file through `stream`: data as bytes, holes as holes.
Result<void> send_file(virStreamPtr stream, int fd, std::uint64_t size, const std::string& path,
                       const std::string& what, const ProgressFn& progress) {
  std::vector<std::uint8_t> buf(k_chunk);
  std::uint64_t offset = 0;
  while (offset < size) {
    UTSUSHI_TRY(check_cancelled());
    auto run = UTSUSHI_TRY(next_file_run(fd, offset, size, path));
    if (!run.data) {
      if (virStreamSendHole(stream, static_cast<long long>(run.end - offset), 0) < 0) {
        return fail(Errc::unavailable, fmt::format("{}: sending a hole: {}", what, last_error()));
      }
      offset = run.end;
    }
    while (offset < run.end && run.data) {
      UTSUSHI_TRY(check_cancelled());
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(k_chunk, run.end - offset));
      UTSUSHI_TRY(pread_full(fd, std::span(buf.data(), n), offset, path));
      for (std::size_t sent = 0; sent < n;) {
        int r = virStreamSend(stream, reinterpret_cast<const char*>(buf.data()) + sent, n - sent);
        if (r < 0) {
          return fail(Errc::unavailable, fmt::format("{}: {}", what, last_error()));
        }
        sent += static_cast<std::size_t>(r);
      }
      offset += n;
      if (progress) {
        progress(offset, size);
      }
    }
  }
  if (progress) {
    progress(size, size);
  }
  return {};
}

Result<void> stream_into(Connection& conn, virStorageVolPtr vol, int fd, std::uint64_t size, const std::string& path,
                         const std::string& what, const ProgressFn& progress) {
  VirStream stream(virStreamNew(conn.get(), 0));
  if (!stream) {
    return fail(Errc::unavailable, fmt::format("{}: {}", what, last_error()));
  }
  if (virStorageVolUpload(vol, stream.get(), 0, size, VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) < 0) {
    return fail(Errc::failed_precondition, fmt::format("{}: {}", what, last_error()));
  }
  if (auto r = send_file(stream.get(), fd, size, path, what, progress); !r) {
    virStreamAbort(stream.get());
    return r;
  }
  if (virStreamFinish(stream.get()) < 0) {
    return fail(Errc::unavailable, fmt::format("{}: finishing: {}", what, last_error()));
  }
  return {};
}

}  // namespace

Result<VolumeInfo> upload_volume(Connection& conn, const std::string& pool, const std::string& name,
                                 const std::string& source, const ProgressFn& progress) {
  auto fd = UTSUSHI_TRY(open_fd(source, O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) {
    return fail_errno(errno, source);
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(Errc::invalid_argument, fmt::format("{}: not a regular file", source));
  }
  auto size = static_cast<std::uint64_t>(st.st_size);
  auto vol = UTSUSHI_TRY(create_volume(conn, pool, name, VolumeFormat::raw, size));
  std::string what = fmt::format("uploading {} into volume {} of pool {} on {}", source, name, pool, conn.uri());
  auto uploaded = [&]() -> Result<VolumeInfo> {
    VirPool p(virStoragePoolLookupByName(conn.get(), pool.c_str()));
    VirVolume v(p ? virStorageVolLookupByName(p.get(), name.c_str()) : nullptr);
    if (!v) {
      return fail(Errc::unavailable, fmt::format("{}: {}", what, last_error()));
    }
    UTSUSHI_TRY(stream_into(conn, v.get(), fd.get(), size, source, what, progress));
    // libvirt refreshes the pool after an upload on a thread of its own;
    // refreshing here makes the probed format and size visible now.
    if (virStoragePoolRefresh(p.get(), 0) < 0) {
      UTSUSHI_LOG_DEBUG("{}: refreshing the pool: {}", what, last_error());
    }
    return volume_info(conn, pool, name);
  }();
  if (!uploaded) {
    if (auto r = delete_volume(conn, pool, name); !r) {
      UTSUSHI_LOG_ERROR("{}: the partial volume {} stays: {}", what, vol.path, r.error().message());
    }
  }
  return uploaded;
}

}  // namespace utsushi::virt
