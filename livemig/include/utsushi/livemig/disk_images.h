#pragma once
// The destination's images of a libvirt domain moved with --copy-storage
// (receive --libvirt --copy-storage --storage-dir DIR): before the receiver
// starts the domain it creates, for every disk the sender announced
// (disk_session.h), an image of the same format and virtual size in DIR
// under the source image's file name: a qcow2 overlay over the backing file
// at the same path as on the source (which must exist here with the same
// content: check_backings), an empty qcow2, or a sparse raw file. The
// domain's XML then names these files (virt::relocated_disks_xml). The disk
// data arrive afterwards through the destination QEMU's own NBD export.
//
// The receiver refuses a storage directory whose filesystem has less free
// space than the images take on the source (check_free_space). Files are
// never replaced: a name that exists (e.g. left by a receiver that
// was killed, which cannot clean up) is refused, naming the file, before
// anything is created. Every file a CreatedImages made is removed when it is
// destroyed, unless keep() was called (the migration succeeded).

#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/livemig/disk_session.h"

namespace utsushi::livemig {

// Where disk `disk` of the list goes.
struct ImagePlan {
  std::size_t disk = 0;
  std::string source_file;  // the source's image (the domain XML's <source file>)
  std::string path;         // storage_dir/<the source file's name>

  friend bool operator==(const ImagePlan&, const ImagePlan&) = default;
};

// Pure. Errc::invalid_argument when `storage_dir` is not absolute, or two
// disks would get the same path.
[[nodiscard]] Result<std::vector<ImagePlan>> plan_images(const std::vector<SessionDisk>& disks,
                                                         const std::string& storage_dir);

// Pure. Errc::failed_precondition, naming the directory and both figures,
// when `available` (the free space of `storage_dir`'s filesystem) is less
// than the disks' allocated sizes added up (SessionDisk::allocated: what
// their images take on the source host). A lower bound, checked before
// anything is created: a compressed source image needs more here, and what
// the guest writes during the move comes on top; a filesystem that fills up
// during the copy still fails the migration, and its images are removed.
[[nodiscard]] Result<void> check_free_space(const std::vector<SessionDisk>& disks, const std::string& storage_dir,
                                            std::uint64_t available);

// Owns the files it created. Move-only; not thread-safe.
class CreatedImages {
 public:
  // Creates every planned image (disks[plan[i].disk] says what). On failure
  // the files made so far are removed: Errc::failed_precondition for a name
  // that exists, the creating step's error (naming the file) otherwise.
  [[nodiscard]] static Result<CreatedImages> create(const std::vector<SessionDisk>& disks,
                                                    const std::vector<ImagePlan>& plan);
  CreatedImages() = default;
  CreatedImages(CreatedImages&& other) noexcept;
  CreatedImages& operator=(CreatedImages&& other) noexcept;
  CreatedImages(const CreatedImages&) = delete;
  CreatedImages& operator=(const CreatedImages&) = delete;
  ~CreatedImages();

  const std::vector<std::string>& paths() const noexcept { return m_paths; }
  // The files stay (the destination runs on them).
  void keep() noexcept { m_paths.clear(); }
  // Removes every file now (errors logged; a missing file is fine).
  void remove() noexcept;

 private:
  std::vector<std::string> m_paths;
};

}  // namespace utsushi::livemig
