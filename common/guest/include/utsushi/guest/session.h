#pragma once
// A libguestfs session: one appliance launch over many disks (libguestfs takes
// up to ~255), because a launch costs ~16 s under TCG. Disks are added before
// launch, each read-only (writes go to a throw-away overlay in the appliance)
// or writable, always with its format named: a writable image is never probed.
//
// Errors come back as Result carrying libguestfs's own message (its error
// handler is silenced so nothing is printed behind our back). libguestfs
// progress events go to the ProgressFn, its log and warnings to utsushi's log
// (the C callbacks catch everything: no exception crosses them). Cancellation
// (SIGINT/SIGTERM through common/cancel.h) kills the appliance's QEMU, so a
// long call in the appliance ends at once and the caller gets Errc::cancelled.
//
// The accelerator: LIBGUESTFS_BACKEND / LIBGUESTFS_BACKEND_SETTINGS set by the
// user win; otherwise the direct backend, with force_tcg unless the
// accelerator probe (choose_accel) chooses KVM.
//
// A Session is not safe for concurrent use (REQUIRES: external
// synchronisation); separate Sessions may run on separate threads.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/guest/guestfs_handle.h"
#include "utsushi/common/progress.h"

struct guestfs_h;

namespace utsushi::guest {

enum class DiskAccess { read_only, writable };

struct DiskSpec {
  std::string path;
  std::string format;  // "raw", "qcow2", ... (required: never probed)
  DiskAccess access = DiskAccess::read_only;
};

struct SessionOptions {
  ProgressFn progress;         // progress of long appliance calls (bytes or percent, as libguestfs reports)
  int memsize_mib = 0;         // 0: libguestfs's default (1280 MiB)
  int smp = 0;                 // 0: libguestfs's default (1)
  std::string identifier;      // names this session in libguestfs's trace ("p2v-convert")
};

// The result of a command run inside the guest.
struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
  bool ok() const noexcept { return exit_code == 0; }
};

// What lstat() reports of a guest path.
struct FileStat {
  unsigned mode = 0;  // type and permission bits, as st_mode
  long uid = 0, gid = 0;
  long long size = 0;
  bool is_dir() const noexcept { return (mode & 0170000) == 0040000; }
  bool is_symlink() const noexcept { return (mode & 0170000) == 0120000; }
  unsigned permissions() const noexcept { return mode & 07777; }
};

class Session {
 public:
  // Creates a handle (nothing is launched). Fails when libguestfs cannot be
  // initialised or the accelerator probe fails.
  [[nodiscard]] static Result<Session> create(SessionOptions options = {});

  Session(Session&& other) noexcept;
  Session& operator=(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();  // shuts the appliance down (errors logged, never thrown) and closes the handle

  // ---- before launch ----
  // Adds a disk; its appliance device is disk_device(index) in the order added.
  [[nodiscard]] Result<void> add_disk(const DiskSpec& disk);
  [[nodiscard]] Result<void> launch();

  // ---- after launch ----
  std::size_t disk_count() const noexcept;
  // The appliance device of the index-th disk added ("/dev/sda").
  [[nodiscard]] Result<std::string> disk_device(std::size_t index) const;
  // Syncs and stops the appliance; write errors of writable disks surface here.
  // After it only destruction is valid.
  [[nodiscard]] Result<void> shutdown();

  // Guest files (paths inside the mounted guest; "/" is its root).
  [[nodiscard]] Result<bool> exists(const std::string& path);
  [[nodiscard]] Result<bool> is_file(const std::string& path);  // follows symlinks
  [[nodiscard]] Result<bool> is_dir(const std::string& path);   // follows symlinks
  [[nodiscard]] Result<bool> is_symlink(const std::string& path);
  [[nodiscard]] Result<std::string> read_file(const std::string& path);
  // The file's content, or nullopt when it does not exist (one appliance round
  // trip, where exists() + read_file() take two).
  [[nodiscard]] Result<std::optional<std::string>> read_file_if_exists(const std::string& path);
  // The path's own metadata (a symlink is not followed), or nullopt when it does
  // not exist.
  [[nodiscard]] Result<std::optional<FileStat>> lstat(const std::string& path);
  // Replaces `path` atomically inside the guest (temporary + rename), keeping the
  // mode and owner of the file it replaces (new files: 0644 root:root, missing
  // parent directories created); a symlink is followed and its target replaced.
  [[nodiscard]] Result<void> write_file(const std::string& path, std::string_view content);
  [[nodiscard]] Result<void> copy_file(const std::string& from, const std::string& to);
  [[nodiscard]] Result<void> remove(const std::string& path);  // a file or symlink; absent is fine
  [[nodiscard]] Result<void> mkdir_p(const std::string& path);
  [[nodiscard]] Result<void> symlink(const std::string& target, const std::string& link);
  [[nodiscard]] Result<std::string> readlink(const std::string& path);
  // Names in a directory (no "." or ".."), sorted.
  [[nodiscard]] Result<std::vector<std::string>> ls(const std::string& dir);
  // Paths matching a glob, sorted; none is an empty list.
  [[nodiscard]] Result<std::vector<std::string>> glob(const std::string& pattern);
  // Paths matching any of the globs, each pattern's sorted matches in pattern
  // order, each path once. Patterns whose wildcards are in the last component
  // cost one listing per directory, not one round trip per pattern; a directory
  // missing from its parent's listing costs none. Directories carry no
  // trailing slash (glob() marks them with one).
  [[nodiscard]] Result<std::vector<std::string>> glob(std::span<const std::string_view> patterns);
  // The path with each component's case as it exists (FAT: \EFI\BOOT), or the
  // path itself when some component does not exist.
  [[nodiscard]] Result<std::string> case_sensitive_path(const std::string& path);

  // Runs argv inside the guest (chroot; /dev, /proc, /sys bound; PATH set to
  // the usual system directories; LC_ALL=C). A non-zero exit is a result, not
  // an error; errors are failures to run at all. Output is capped by
  // libguestfs's message size (4 MiB): filter large listings in the guest.
  [[nodiscard]] Result<CommandResult> run(const std::vector<std::string>& argv);

  // Devices, filesystems, mounting.
  [[nodiscard]] Result<std::vector<std::string>> list_partitions();
  [[nodiscard]] Result<std::vector<std::string>> list_lvs();  // "/dev/VG/LV"
  [[nodiscard]] Result<std::vector<std::string>> list_md_devices();
  // blkid's low-level probe of a device (TYPE, UUID, LABEL, PARTUUID,
  // PART_ENTRY_TYPE, ...); empty when it carries no recognised signature.
  // Each probe runs blkid in the appliance (~1 s under TCG), so results are
  // cached for the session: call forget_device_tags() after changing a
  // filesystem's or partition's identity (mkfs, new UUIDs, repartitioning).
  [[nodiscard]] Result<std::map<std::string, std::string>> blkid(const std::string& device);
  void forget_device_tags() noexcept;
  // A device's filesystem type, UUID and label (from blkid(); "" when none).
  [[nodiscard]] Result<std::string> vfs_type(const std::string& device);
  [[nodiscard]] Result<std::string> vfs_uuid(const std::string& device);
  [[nodiscard]] Result<std::string> vfs_label(const std::string& device);
  [[nodiscard]] Result<std::string> partition_table(const std::string& disk);  // "msdos", "gpt", "" (none)
  // GPT type GUID (upper case) or MBR id ("0xef"), per the disk's table ("" when unknown).
  [[nodiscard]] Result<std::string> partition_type(const std::string& partition);
  [[nodiscard]] Result<std::string> partition_disk(const std::string& partition);  // "/dev/sda1" -> "/dev/sda"
  [[nodiscard]] Result<int> partition_number(const std::string& partition);       // "/dev/sda1" -> 1
  [[nodiscard]] Result<std::vector<std::uint8_t>> pread_device(const std::string& device, std::size_t size,
                                                               std::uint64_t offset);
  // Mounts `device` at `mountpoint` (relative to the guest root) with options
  // ("" for none; "ro" for read-only).
  [[nodiscard]] Result<void> mount(const std::string& device, const std::string& mountpoint,
                                   const std::string& options);
  [[nodiscard]] Result<void> umount_all();
  // Restricts LVM to `devices` (whole disks or partitions; empty: no filter) and
  // rescans; used to tell apart clones whose VGs share names and UUIDs.
  [[nodiscard]] Result<void> lvm_set_filter(const std::vector<std::string>& devices);
  [[nodiscard]] Result<void> vg_activate_all(bool active);

  // libguestfs's inspection roots ("/dev/sda2"); inspection runs once per
  // session (it reads every filesystem of every disk), later calls reuse it.
  [[nodiscard]] Result<std::vector<std::string>> inspection_roots();

  // The raw handle, for libguestfs calls not wrapped here. The handle's error
  // handler is silenced: after a failing call use error() for the message.
  guestfs_h* handle() const noexcept;
  // The last libguestfs error as an Error, "WHAT: MESSAGE". A call interrupted
  // by cancellation gives Errc::cancelled.
  Error error(std::string_view what) const;

  struct State;  // event sink and launch bookkeeping (stable address across moves)

 private:
  Session(GuestfsHandle handle, std::unique_ptr<State> state);
  [[nodiscard]] Result<void> check_launched(std::string_view what) const;
  [[nodiscard]] Result<bool> absent(const Error& e, const std::string& path);
  void close() noexcept;

  GuestfsHandle m_handle;
  std::unique_ptr<State> m_state;
};

}  // namespace utsushi::guest
