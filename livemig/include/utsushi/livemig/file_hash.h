#pragma once
// The content hash of a whole file: XXH3-128 of its bytes, as 32 lower-case
// hex digits. Both ends of a --copy-storage migration hash a disk's backing
// file (disk_session.h), so that a destination whose copy differs refuses
// before anything is created.
//
// Fast on large, sparse images: holes (SEEK_HOLE) are hashed from a zero
// buffer without reading, data is read in 4 MiB preads with sequential
// read-ahead. Results are remembered for the process's life, and in the disk
// cache (disk_cache.h) when it is on, keyed by device, inode, size,
// modification and change time, so an evacuation of many guests over one
// golden image reads it once, and later migrations not at all; a file
// changed in the last 2 s is hashed every time (its times may not have moved
// yet). A call for a file version another thread is hashing waits for that
// result.
//
// Thread-safe.

#include <string>

#include "utsushi/common/error.h"

namespace utsushi::livemig {

// Errc::not_found naming `path` when it does not exist; other errors name it
// too. A file that is not a regular file is Errc::invalid_argument.
[[nodiscard]] Result<std::string> file_content_hash(const std::string& path);

}  // namespace utsushi::livemig
