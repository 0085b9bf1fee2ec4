#pragma once
// The image a restore reads, local or served (remote_image.h): opened
// through imagefmt and checked before anything is written. A qcow2, and each
// qcow2 of its backing chain, is checked as qemu-img check does; a corrupt
// one is Errc::corruption.
#include <memory>
#include <optional>
#include <string>

#include "utsushi/common/error.h"
#include "utsushi/imagefmt/block_device.h"

namespace utsushi::v2p {

struct SourceImage {
  std::unique_ptr<imagefmt::BlockDevice> device;
  // Changes when any file of the image (its backing chain included) changes:
  // path, device, inode, size and modification time of each.
  std::string identity;
};

[[nodiscard]] Result<SourceImage> open_source_image(const std::string& path, const std::optional<std::string>& format);

}  // namespace utsushi::v2p
