#pragma once
// Move-only owners for the C handles of the base library (libvirt's are in
// utsushi/virt/handles.h, libguestfs's in utsushi/guest/guestfs_handle.h). Each is a unique_ptr with
// the library's own release function, so a handle is freed on every path.
//   ArchiveReader  struct archive* archive_read_free
//   ArchiveWriter  struct archive* archive_write_free
//   ZstdCCtx       ZSTD_CCtx*      ZSTD_freeCCtx
//   ZstdDCtx       ZSTD_DCtx*      ZSTD_freeDCtx

#include <memory>

struct archive;
struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace utsushi {

struct ArchiveReadFreer { void operator()(archive* a) const noexcept; };
struct ArchiveWriteFreer { void operator()(archive* a) const noexcept; };
struct ZstdCCtxFreer { void operator()(ZSTD_CCtx_s* c) const noexcept; };
struct ZstdDCtxFreer { void operator()(ZSTD_DCtx_s* d) const noexcept; };

using ArchiveReader = std::unique_ptr<archive, ArchiveReadFreer>;
using ArchiveWriter = std::unique_ptr<archive, ArchiveWriteFreer>;
using ZstdCCtx = std::unique_ptr<ZSTD_CCtx_s, ZstdCCtxFreer>;
using ZstdDCtx = std::unique_ptr<ZSTD_DCtx_s, ZstdDCtxFreer>;

}  // namespace utsushi
