// The destination's images of a libvirt domain moved with --copy-storage
// (disk_images.h).
#include "utsushi/livemig/disk_images.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cstring>
#include <filesystem>

#include "utsushi/common/fd.h"
#include "utsushi/common/log.h"
#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/qcow2.h"

namespace utsushi::livemig {

namespace {

// Takes `path` for this receiver: it must not exist yet.
Result<void> claim(const std::string& path) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd) {
    return fd.close();
  }
  if (errno == EEXIST) {
    return fail(Errc::failed_precondition,
                fmt::format("{} already exists (a receiver that was killed leaves its images: remove it if no "
                            "domain uses it)",
                            path));
  }
  return std::unexpected(errno_error(errno, "creating " + path));
}

// Fills the claimed (empty) file at `path` with an image like disk `d`.
Result<void> make_image(const SessionDisk& d, const std::string& path) {
  if (d.format == "raw") {
    if (::truncate(path.c_str(), static_cast<off_t>(d.size)) != 0) {
      return std::unexpected(errno_error(errno, "sizing " + path));
    }
    return {};
  }
  if (!d.backing.empty()) {
    return imagefmt::create_qcow2_overlay(path, d.backing, d.backing_format, d.size);
  }
  return imagefmt::create_qcow2(path, d.size);
}

}  // namespace

Result<void> check_free_space(const std::vector<SessionDisk>& disks, const std::string& storage_dir,
                              std::uint64_t available) {
  std::uint64_t needed = 0;
  for (const auto& d : disks) {
    needed = d.allocated > ~needed ? ~std::uint64_t{0} : needed + d.allocated;  // saturates
  }
  if (needed <= available) {
    return {};
  }
  return fail(Errc::failed_precondition,
              fmt::format("{} has {} ({} bytes) free, and the {} disk image{} take{} {} ({} bytes) on the source: "
                          "free some space or choose another --storage-dir",
                          storage_dir, format_bytes(available), available, disks.size(), disks.size() == 1 ? "" : "s",
                          disks.size() == 1 ? "s" : "", format_bytes(needed), needed));
}

Result<std::vector<ImagePlan>> plan_images(const std::vector<SessionDisk>& disks, const std::string& storage_dir) {
  if (!storage_dir.starts_with('/')) {
    return fail(Errc::invalid_argument, fmt::format("--storage-dir {} is not an absolute path", storage_dir));
  }
  std::vector<ImagePlan> plan;
  for (std::size_t i = 0; i < disks.size(); ++i) {
    std::string name = std::filesystem::path(disks[i].file).filename().string();
    if (name.empty() || name == "." || name == "..") {
      return fail(Errc::invalid_argument, fmt::format("disk {}: {} names no file", i, disks[i].file));
    }
    std::string path = (std::filesystem::path(storage_dir) / name).string();
    for (const auto& p : plan) {
      if (p.path == path) {
        return fail(Errc::invalid_argument,
                    fmt::format("disks {} and {} both have the file name {}: they cannot share {}", p.disk, i, name,
                                storage_dir));
      }
    }
    plan.push_back({i, disks[i].file, path});
  }
  return plan;
}

Result<CreatedImages> CreatedImages::create(const std::vector<SessionDisk>& disks, const std::vector<ImagePlan>& plan) {
  CreatedImages made;
  for (const auto& p : plan) {
    UTSUSHI_TRY(claim(p.path));
    made.m_paths.push_back(p.path);
    UTSUSHI_TRY_CTX(make_image(disks.at(p.disk), p.path), "creating the destination's image " + p.path);
    UTSUSHI_LOG_INFO("created {} ({} bytes, {}{})", p.path, disks[p.disk].size, disks[p.disk].format,
                     disks[p.disk].backing.empty() ? std::string() : " over " + disks[p.disk].backing);
  }
  return made;
}

CreatedImages::CreatedImages(CreatedImages&& other) noexcept : m_paths(std::move(other.m_paths)) {
  other.m_paths.clear();
}

CreatedImages& CreatedImages::operator=(CreatedImages&& other) noexcept {
  if (this != &other) {
    remove();
    m_paths = std::move(other.m_paths);
    other.m_paths.clear();
  }
  return *this;
}

CreatedImages::~CreatedImages() { remove(); }

void CreatedImages::remove() noexcept {
  for (const auto& p : m_paths) {
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
      UTSUSHI_LOG_WARN("could not remove the destination's image {}: {}", p, std::strerror(errno));
    } else {
      UTSUSHI_LOG_INFO("removed the destination's image {}", p);
    }
  }
  m_paths.clear();
}

}  // namespace utsushi::livemig
