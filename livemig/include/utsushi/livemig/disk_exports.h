#pragma once
// The QMP side of livemig's disk pre-copy (docs/ARCHITECTURE.md, "livemig:
// disks"): QEMU's NBD server, its block exports and the dirty bitmaps of the
// passes, driven through a Monitor (monitor.h), so a test drives it with
// fake_monitor.h and livemig with a real QEMU alike. The data itself moves
// through nbd_client.h.
//
// Source side, one DirtyTracker per disk:
//   pass 0  the top image's allocation: export "<tag>-p0" (read-only, with
//           allocation depth); bitmap 1 records writes from the moment the
//           tracker starts.
//   pass n  (n >= 1, next_pass()) in one QMP transaction bitmap n+1 starts
//           recording and bitmap n stops; bitmap n is exported read-only as
//           "<tag>-p<n>" (QEMU 7.2 refuses to export a recording bitmap on a
//           read-only export), the previous export and bitmap are removed.
// Every write lands in the recording bitmap, so nothing written after pass 0
// began is lost between passes.
//
// Destination side: export_disk() with Access::writable on a QEMU started
// with -incoming defer: it takes writes while it waits for the stream (as
// libvirt's copy-storage relies on).
//
// Errors are the Monitor's (a QMP error reply is failed_precondition with
// QEMU's text), with the object named in the context.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/livemig/monitor.h"

namespace utsushi::livemig {

// nbd-server-start on a UNIX socket at `socket` (QEMU creates it).
[[nodiscard]] Result<void> start_nbd_server(Monitor& qmp, const std::string& socket);
// nbd-server-stop: removes the server and every NBD export it serves.
[[nodiscard]] Result<void> stop_nbd_server(Monitor& qmp);

enum class Access { read_only, writable };

struct ExportSpec {
  std::string id;    // block export id (also its NBD export name)
  std::string node;  // the block node: the disk's top image
  Access access = Access::read_only;
  bool allocation_depth = false;       // offer qemu:allocation-depth
  std::optional<std::string> bitmap;   // offer qemu:dirty-bitmap:NAME (a bitmap that is not recording)
};

// block-export-add of type nbd.
[[nodiscard]] Result<void> export_disk(Monitor& qmp, const ExportSpec& spec);
// block-export-del, then waits up to `timeout` until QEMU no longer lists it
// (deletion is asynchronous): Errc::unavailable when it is still listed then.
// While an NBD client is connected QEMU refuses ("export 'ID' still in use":
// failed_precondition).
[[nodiscard]] Result<void> remove_export(Monitor& qmp, const std::string& id,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

// The export a pass reads: its NBD name and, from pass 1 on, the bitmap.
struct PassExport {
  unsigned pass = 0;
  std::string name;
  std::optional<std::string> bitmap;  // nullopt for pass 0 (read the allocation)
};

// A source disk's passes (see above). Move-only; it does not own the
// monitor, which must outlive it. The NBD server must be running.
class DirtyTracker {
 public:
  // Starts recording (bitmap 1) and exports pass 0. `node` is the disk's top
  // node; `tag` names its exports and bitmaps (unique per disk and run).
  [[nodiscard]] static Result<DirtyTracker> start(Monitor& qmp, std::string node, std::string tag);

  DirtyTracker(DirtyTracker&&) noexcept = default;
  DirtyTracker& operator=(DirtyTracker&&) noexcept = default;
  DirtyTracker(const DirtyTracker&) = delete;
  DirtyTracker& operator=(const DirtyTracker&) = delete;

  const PassExport& current() const noexcept { return m_current; }
  // Ends the current pass and opens the next. REQUIRES: no NBD client is
  // connected to the current export (QEMU keeps it while one is).
  [[nodiscard]] Result<PassExport> next_pass();
  // Removes every export and bitmap this tracker made, as far as QEMU lets
  // it (all are tried; the first error is returned). Safe after any failure.
  [[nodiscard]] Result<void> stop();

  // Names, for tests and messages.
  std::string bitmap_name(unsigned n) const { return m_tag + "-b" + std::to_string(n); }
  std::string export_name(unsigned n) const { return m_tag + "-p" + std::to_string(n); }

 private:
  DirtyTracker(Monitor& qmp, std::string node, std::string tag)
      : m_qmp(&qmp), m_node(std::move(node)), m_tag(std::move(tag)) {}

  Monitor* m_qmp;
  std::string m_node;
  std::string m_tag;
  PassExport m_current;
  bool m_exported = false;             // m_current's export exists
  std::vector<std::string> m_bitmaps;  // bitmaps this tracker added that still exist
};

}  // namespace utsushi::livemig
