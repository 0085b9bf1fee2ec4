// --verify: every used range of the source against the image, by chunk hash
// (utsushi_disk's verify_ranges).
#include "utsushi/imagefmt/raw.h"
#include "utsushi/imagefmt/registry.h"
#include "utsushi/p2v/capture.h"

namespace utsushi::p2v {

Result<VerifyStats> verify_image(imagefmt::BlockDevice& source, const disk::ByteRanges& used, const std::string& image_path,
                                 unsigned threads, ProgressFn progress) {
  auto image = UTSUSHI_TRY(imagefmt::open_image(image_path));
  // A block device written in place may be larger than the source.
  const bool larger_device_ok = imagefmt::is_block_device(image_path) && image->size() > source.size();
  if (image->size() != source.size() && !larger_device_ok) {
    return fail(Errc::corruption, "verify: " + image_path + " has " + std::to_string(image->size()) +
                                      " bytes but the source has " + std::to_string(source.size()));
  }
  return disk::verify_ranges(source, *image, used, threads, std::move(progress));
}

}  // namespace utsushi::p2v
