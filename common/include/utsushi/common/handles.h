#pragma once
// Move-only owners for every C handle utsushi uses. Each is a unique_ptr with
// the library's own release function, so a handle is freed on every path.
<<<<<<< HEAD
//   GuestfsHandle  guestfs_h*      guestfs_close
=======
// (libguestfs's owner lives in the guest library: utsushi/guest/guestfs_handle.h.)
//   VirConnection  virConnectPtr   virConnectClose
//   VirDomain      virDomainPtr    virDomainFree
>>>>>>> guest
//   ArchiveReader  struct archive* archive_read_free
//   ArchiveWriter  struct archive* archive_write_free
//   ZstdCCtx       ZSTD_CCtx*      ZSTD_freeCCtx
//   ZstdDCtx       ZSTD_DCtx*      ZSTD_freeDCtx

#include <memory>

<<<<<<< HEAD
struct guestfs_h;
=======
struct _virConnect;
struct _virDomain;
>>>>>>> guest
struct archive;
struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace utsushi {

<<<<<<< HEAD
struct GuestfsCloser { void operator()(guestfs_h* g) const noexcept; };
=======
struct VirConnectCloser { void operator()(_virConnect* c) const noexcept; };
struct VirDomainFreer { void operator()(_virDomain* d) const noexcept; };
>>>>>>> guest
struct ArchiveReadFreer { void operator()(archive* a) const noexcept; };
struct ArchiveWriteFreer { void operator()(archive* a) const noexcept; };
struct ZstdCCtxFreer { void operator()(ZSTD_CCtx_s* c) const noexcept; };
struct ZstdDCtxFreer { void operator()(ZSTD_DCtx_s* d) const noexcept; };

<<<<<<< HEAD
using GuestfsHandle = std::unique_ptr<guestfs_h, GuestfsCloser>;
=======
using VirConnection = std::unique_ptr<_virConnect, VirConnectCloser>;
using VirDomain = std::unique_ptr<_virDomain, VirDomainFreer>;
>>>>>>> guest
using ArchiveReader = std::unique_ptr<archive, ArchiveReadFreer>;
using ArchiveWriter = std::unique_ptr<archive, ArchiveWriteFreer>;
using ZstdCCtx = std::unique_ptr<ZSTD_CCtx_s, ZstdCCtxFreer>;
using ZstdDCtx = std::unique_ptr<ZSTD_DCtx_s, ZstdDCtxFreer>;

}  // namespace utsushi
