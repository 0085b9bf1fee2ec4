#pragma once
// The raw driver: regular files and block devices, byte for byte.
//  - Regular files: sparse-aware extents (SEEK_DATA/SEEK_HOLE), zero and
//    discard punch holes (FALLOC_FL_PUNCH_HOLE) so zeros cost no space.
//  - Block devices: size from BLKGETSIZE64, logical block size from BLKSSZGET,
//    zero through BLKZEROOUT, discard through BLKDISCARD. Discard is never
//    assumed to read back as zeros.
//  - A block device is refused for writing when it (or one of its partitions)
//    is mounted or otherwise claimed (O_EXCL, holders such as LVM/dm).
// pread/pwrite are positional, so the driver is thread-safe.

#include <memory>
#include <string>

#include "utsushi/common/fd.h"
#include "utsushi/imagefmt/block_driver.h"

namespace utsushi::imagefmt {

enum class Access { read_only, read_write };

struct RawOpenOptions {
  Access access = Access::read_only;
  // Set when the format was probed rather than named: writes that would make
  // the first sector probe as another format are refused (QEMU's rule for
  // probed raw images).
  bool probed = false;
};

// Opens an existing regular file or block device; anything else (FIFO,
// socket, character device, directory) is refused at once without blocking.
[[nodiscard]] Result<std::unique_ptr<BlockDriver>> open_raw(const std::string& path, const RawOpenOptions& options = {});

// Wraps an already open descriptor (e.g. an AtomicFile's temporary, dup'ed).
// `description` names it in errors.
[[nodiscard]] Result<std::unique_ptr<BlockDriver>> raw_from_fd(Fd fd, std::string description, Access access);

// Whether `path` is a block device.
bool is_block_device(const std::string& path);

// Why a block device may not be written: "mounted at /x", "in use by dm-0", or
// empty when it is free. Checks the device and its partitions.
[[nodiscard]] Result<std::string> block_device_busy_reason(const std::string& path);

}  // namespace utsushi::imagefmt
