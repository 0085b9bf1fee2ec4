#pragma once
// Operations on a mounted guest, in the manner of virt-sysprep's: each has a
// name, a description, a default (on/off), a test of whether it applies to a
// guest, and one body that both plans and applies. p2v convert, v2p's
// bare-metal preparation and clone's identity are each a list of operations
// run in one appliance launch, reported alike (change.h).
//
// An operation acts on the guest only through its Target, which records every
// change and, in a dry run (Mode::plan), records without writing: reads see
// the planned contents of files written earlier in the same run, commands are
// listed but not run. So `--dry-run` prints exactly what a real run does, up to
// what depends on command results (a plan cannot check an initramfs that was
// not built). An operation's parameters are given to its constructor.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/guest/change.h"
#include "utsushi/guest/guest_os.h"
#include "utsushi/guest/session.h"

namespace utsushi::guest {

enum class Mode { plan, apply };

class DeviceMap;

// The guest as an operation sees it: files, commands, the inspection result.
// Not thread-safe. Lives for one run of a list of operations.
class Target {
 public:
  Target(Session& session, const GuestOs& os, Mode mode);
  ~Target();
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  Session& session() noexcept { return m_session; }
  const GuestOs& os() const noexcept { return m_os; }
  bool applying() const noexcept { return m_mode == Mode::apply; }

  // The stable names of the session's devices (scanned on first use).
  [[nodiscard]] Result<const DeviceMap*> devices();

  // A guest file's content (nullopt when absent), as planned so far in a dry run.
  [[nodiscard]] Result<std::optional<std::string>> read(const std::string& path);
  [[nodiscard]] Result<bool> exists(const std::string& path);
  // Writes `content` when it differs from the file's; records the change.
  // Returns whether anything changed. Parent directories are created.
  [[nodiscard]] Result<bool> write(const std::string& path, const std::string& content, std::string detail);
  // Removes a file or symlink if present; records it. Returns whether it existed.
  [[nodiscard]] Result<bool> remove(const std::string& path, std::string detail);
  // Copies a guest file (binary) to `to`; records it.
  [[nodiscard]] Result<void> copy(const std::string& from, const std::string& to, std::string detail);
  // Creates or replaces a symlink `link` -> `target` unless it already points there.
  [[nodiscard]] Result<bool> symlink(const std::string& target, const std::string& link, std::string detail);
  // Runs a command in the guest and records it with its result; in a dry run
  // only records it and returns nullopt.
  [[nodiscard]] Result<std::optional<CommandResult>> run(const std::vector<std::string>& argv, std::string detail);
  // Records a warning the user must see (also logged) / a check made on the result.
  void note(std::string target, std::string detail);
  void check(std::string target, std::string detail);
  void service(std::string unit, std::string detail);
  // Records a change an operation made (or plans) through the session itself,
  // for work the methods above do not cover or must not record verbatim
  // (removing trees without reading them, writing secrets).
  void record(Change change);

  std::vector<Change> take_changes();
  // Whether a file change of this run (applied or planned, by any operation so
  // far) has a path starting with one of `prefixes` ("/etc/fstab", "/etc/udev/").
  [[nodiscard]] bool changed_files_under(std::span<const std::string_view> prefixes) const;

 private:
  Session& m_session;
  const GuestOs& m_os;
  Mode m_mode;
  std::unique_ptr<DeviceMap> m_devices;
  std::map<std::string, std::optional<std::string>> m_planned;  // dry run: path -> content (nullopt: removed)
  std::vector<Change> m_changes;
  std::set<std::string> m_files_changed;  // every file change's target, kept across take_changes()
};

struct Applicability {
  bool applies = true;
  std::string reason;  // why not (or a remark when it does)
};

class Operation {
 public:
  virtual ~Operation() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view description() const = 0;
  virtual bool enabled_by_default() const { return true; }
  // Whether the operation has anything to act on in this guest.
  virtual Applicability applies(const GuestOs& os) const = 0;
  // Plans or makes the operation's changes through `target` (which records
  // them). Errors stop the run of the list.
  [[nodiscard]] virtual Result<void> run(Target& target) const = 0;
};

using OperationList = std::vector<std::unique_ptr<Operation>>;

// Selects from `all` with virt-sysprep's syntax: a comma-separated list of
// names, "-name" to drop one, "defaults" and "all"; empty selects the
// defaults. Unknown names are Errc::invalid_argument naming the known ones.
[[nodiscard]] Result<std::vector<const Operation*>> select_operations(const OperationList& all,
                                                                      std::string_view spec);
std::vector<const Operation*> default_operations(const OperationList& all);

// "name [*]  description" lines, as `--list-operations` prints them.
std::string list_operations(const OperationList& all);

// Runs the operations in order on the mounted guest. Stops at the first
// failure: the report then ends with that operation (status failed) and
// carries the error. Cancellation between operations is a failure too.
// `started`, when set, is called as each operation that applies starts (a
// rebuild under emulation takes minutes: the caller tells its user).
using OperationStarted = std::function<void(const Operation& op)>;
Report run_operations(Session& session, const GuestOs& os, std::span<const Operation* const> operations, Mode mode,
                      const OperationStarted& started = {});

}  // namespace utsushi::guest
