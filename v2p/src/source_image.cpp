#include "utsushi/v2p/source_image.h"

#include <fmt/core.h>
#include <sys/stat.h>

#include <filesystem>

#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/registry.h"

namespace utsushi::v2p {
namespace {

namespace fs = std::filesystem;
using imagefmt::BlockDevice;

std::string file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return path + ":?";
  }
  return fmt::format("{}:{}:{}:{}:{}.{}", fs::absolute(path).lexically_normal().string(), st.st_dev, st.st_ino,
                     st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

// A qcow2 (and each qcow2 of its backing chain) is checked as qemu-img check
// does; the identity covers every file of the chain.
[[nodiscard]] Result<std::string> check_chain(const std::string& path, BlockDevice& image) {
  std::string identity;
  std::string file = path;
  for (BlockDevice* d = &image; d != nullptr; d = imagefmt::qcow2_backing(*d)) {
    const imagefmt::Qcow2Details* q = imagefmt::qcow2_details(*d);
    if (d != &image && q == nullptr) {
      identity.append("|").append(file_identity(file));  // a raw (or other) base
      break;
    }
    identity.append(identity.empty() ? "" : "|").append(file_identity(file));
    if (q == nullptr) {
      break;
    }
    auto report = UTSUSHI_TRY(imagefmt::check_qcow2(file));
    if (report.corruptions > 0 || report.check_errors > 0) {
      return fail(Errc::corruption,
                  fmt::format("image '{}' is corrupt ({} corruptions, {} unreadable structures{}{}): nothing was "
                              "written", file, report.corruptions, report.check_errors,
                              report.messages.empty() ? "" : "; first: ",
                              report.messages.empty() ? "" : report.messages.front()));
    }
    file = q->backing_file_resolved;
  }
  return identity;
}

}  // namespace

Result<SourceImage> open_source_image(const std::string& path, const std::optional<std::string>& format) {
  SourceImage img;
  imagefmt::OpenOptions oo;
  oo.format = format;
  img.device = UTSUSHI_TRY(imagefmt::open_image(path, oo));
  img.identity = UTSUSHI_TRY(check_chain(path, *img.device));
  return img;
}

}  // namespace utsushi::v2p
