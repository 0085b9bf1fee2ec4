#pragma once
// Storage through libvirt: directory pools and their volumes, so an image
// reaches a host that may be remote (clone uploads a golden once per host,
// then makes its overlays there). https://libvirt.org/storage.html
//
// Errors as Connection's: Errc::not_found for a pool or volume that does not
// exist, Errc::unavailable when libvirtd cannot be reached, and
// Errc::failed_precondition when libvirt refuses the operation.

#include <cstdint>
#include <optional>
#include <string>

#include "utsushi/common/error.h"
#include "utsushi/common/progress.h"
#include "utsushi/virt/connection.h"

namespace utsushi::virt {

struct PoolInfo {
  std::string name;
  std::string path;  // the directory
};

struct VolumeInfo {
  std::string pool;
  std::string name;
  std::string path;              // the file on the host
  std::string format;            // as libvirt sees it: "qcow2", "raw", ...
  std::uint64_t capacity = 0;    // virtual size, bytes
  std::uint64_t allocation = 0;  // bytes allocated on the host
};

// The pool `name`, started (and autostarted) if it was not running. When
// there is none, a persistent directory pool of that name is defined at
// `path`, built (the directory made if missing), started and autostarted.
// An empty `path` accepts the pool wherever it is (Errc::not_found when there
// is none). Errc::failed_precondition when the pool exists with another
// directory, or is not a directory pool.
[[nodiscard]] Result<PoolInfo> ensure_dir_pool(Connection& conn, const std::string& name, const std::string& path);

// The directory pool whose directory is `path` (compared after resolving
// both), whatever its name; nullopt when there is none. For tools given a
// directory (clone --pool DIR): libvirt refuses a second pool on a directory.
[[nodiscard]] Result<std::optional<PoolInfo>> find_dir_pool(Connection& conn, const std::string& path);

[[nodiscard]] Result<VolumeInfo> volume_info(Connection& conn, const std::string& pool, const std::string& name);

enum class VolumeFormat { raw, qcow2 };

// Creates an empty volume of `capacity` bytes (a sparse raw file, or a
// qcow2 of that virtual size). Errc::failed_precondition when the name is
// taken.
[[nodiscard]] Result<VolumeInfo> create_volume(Connection& conn, const std::string& pool, const std::string& name,
                                               VolumeFormat format, std::uint64_t capacity);

// Copies the local file `source` (an image of any format, read as bytes)
// into the new volume `name`, through virStorageVolUpload and a libvirt
// stream: holes of the file are sent as holes (SEEK_DATA/SEEK_HOLE), so a
// sparse file stays sparse on the host. `progress(done, total)` counts
// bytes of the file; cancellation (cancel.h) is polled between chunks. On
// any failure or cancellation the stream is aborted and the volume deleted:
// nothing half-copied is left. The result is the volume as libvirt reads it
// after the upload (format probed by libvirt's refresh).
[[nodiscard]] Result<VolumeInfo> upload_volume(Connection& conn, const std::string& pool, const std::string& name,
                                               const std::string& source, const ProgressFn& progress = {});

// Creates the qcow2 volume `name` whose backing file is `backing` (a
// volume, by path, with its format recorded: qemu-img's -F), of the
// backing's virtual size. The backing is never written.
[[nodiscard]] Result<VolumeInfo> create_overlay_volume(Connection& conn, const std::string& pool,
                                                       const std::string& name, const VolumeInfo& backing);

// Deletes the volume and its file. Errc::not_found when it does not exist.
[[nodiscard]] Result<void> delete_volume(Connection& conn, const std::string& pool, const std::string& name);

}  // namespace utsushi::virt
