#include "utsushi/common/handles.h"

#include <archive.h>
<<<<<<< HEAD
#include <guestfs.h>
=======
#include <libvirt/libvirt.h>
>>>>>>> guest
#include <zstd.h>

namespace utsushi {

<<<<<<< HEAD
void GuestfsCloser::operator()(guestfs_h* g) const noexcept { guestfs_close(g); }
=======
void VirConnectCloser::operator()(_virConnect* c) const noexcept { virConnectClose(c); }
void VirDomainFreer::operator()(_virDomain* d) const noexcept { virDomainFree(d); }
>>>>>>> guest
void ArchiveReadFreer::operator()(archive* a) const noexcept { archive_read_free(a); }
void ArchiveWriteFreer::operator()(archive* a) const noexcept { archive_write_free(a); }
void ZstdCCtxFreer::operator()(ZSTD_CCtx_s* c) const noexcept { ZSTD_freeCCtx(c); }
void ZstdDCtxFreer::operator()(ZSTD_DCtx_s* d) const noexcept { ZSTD_freeDCtx(d); }

}  // namespace utsushi
