#include "utsushi/common/handles.h"

#include <archive.h>
#include <zstd.h>

namespace utsushi {

void ArchiveReadFreer::operator()(archive* a) const noexcept { archive_read_free(a); }
void ArchiveWriteFreer::operator()(archive* a) const noexcept { archive_write_free(a); }
void ZstdCCtxFreer::operator()(ZSTD_CCtx_s* c) const noexcept { ZSTD_freeCCtx(c); }
void ZstdDCtxFreer::operator()(ZSTD_DCtx_s* d) const noexcept { ZSTD_freeDCtx(d); }

}  // namespace utsushi
