#include "utsushi/guest/session.h"

#include <fnmatch.h>
#include <guestfs.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "utsushi/virt/accel.h"
#include "c_strings.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/log.h"

#include <fmt/ranges.h>

namespace utsushi::guest {

using detail::Argv;
using detail::take_list;
using detail::take_string;

struct Session::State {
  ProgressFn progress;
  std::vector<DiskSpec> disks;
  std::vector<std::string> devices;  // after launch, in the order added
  bool launched = false;
  bool inspected = false;
  std::map<std::string, std::map<std::string, std::string>> device_tags;  // blkid cache
  bool shut_down = false;
  std::atomic<int> appliance_pid{0};
  std::atomic<bool> killed_for_cancel{false};
  std::jthread cancel_watch;  // kills the appliance when cancellation is requested
};

namespace {

constexpr std::uint64_t k_log_events = GUESTFS_EVENT_LIBRARY | GUESTFS_EVENT_WARNING | GUESTFS_EVENT_APPLIANCE;

std::string_view trim_line(const char* buf, std::size_t len) {
  std::string_view s(buf, len);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// The single C callback: never lets an exception out.
void on_event(guestfs_h*, void* opaque, std::uint64_t event, int, int, const char* buf, std::size_t buf_len,
              const std::uint64_t* array, std::size_t array_len) noexcept {
  try {
    auto* state = static_cast<Session::State*>(opaque);
    if (event == GUESTFS_EVENT_PROGRESS) {
      // array: proc_nr, serial, position, total
      if (state->progress && array_len >= 4) {
        state->progress(array[2], array[3]);
      }
      return;
    }
    std::string_view text = trim_line(buf, buf_len);
    if (text.empty()) {
      return;
    }
    if (event == GUESTFS_EVENT_WARNING) {
      UTSUSHI_LOG_WARN("libguestfs: {}", text);
    } else if (event == GUESTFS_EVENT_LIBRARY) {
      UTSUSHI_LOG_DEBUG("libguestfs: {}", text);
    } else {
      UTSUSHI_LOG_AT(log::Level::trace, "appliance: {}", text);
    }
  } catch (...) {
    // Nothing may cross back into C; a lost log line is harmless.
  }
}

// The environment decides first; otherwise direct backend, TCG unless the probe chose KVM.
Result<void> configure_backend(guestfs_h* g) {
  if (std::getenv("LIBGUESTFS_BACKEND") == nullptr && guestfs_set_backend(g, "direct") == -1) {
    return fail(Errc::internal, std::string("libguestfs: cannot select the direct backend: ") + guestfs_last_error(g));
  }
  if (std::getenv("LIBGUESTFS_BACKEND_SETTINGS") != nullptr) {
    return {};
  }
  virt::AccelChoice accel = UTSUSHI_TRY(virt::choose_accel());
  UTSUSHI_LOG_DEBUG("libguestfs appliance accelerator: {} ({})", virt::accel_name(accel.accel), accel.reason);
  if (accel.accel == virt::Accel::tcg) {
    std::vector<std::string> settings{"force_tcg"};
    if (guestfs_set_backend_settings(g, Argv(settings).get()) == -1) {
      return fail(Errc::internal, std::string("libguestfs: cannot force TCG: ") + guestfs_last_error(g));
    }
  }
  return {};
}

// Kills the appliance's QEMU once cancellation is requested, so a long call in
// the appliance (update-initramfs, a copy) returns at once.
void watch_cancel(std::stop_token stop, Session::State* state) {
  while (!stop.stop_requested()) {
    if (cancel_requested()) {
      int pid = state->appliance_pid.load();
      if (pid > 0) {
        state->killed_for_cancel = true;
        ::kill(pid, SIGKILL);
      }
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

Session::Session(GuestfsHandle handle, std::unique_ptr<State> state)
    : m_handle(std::move(handle)), m_state(std::move(state)) {}

Session::Session(Session&& other) noexcept = default;

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    close();
    m_handle = std::move(other.m_handle);
    m_state = std::move(other.m_state);
  }
  return *this;
}

Session::~Session() { close(); }

void Session::close() noexcept {
  if (m_state) {
    m_state->cancel_watch = {};  // request stop and join
  }
  if (m_handle && m_state && m_state->launched && !m_state->shut_down) {
    if (guestfs_shutdown(m_handle.get()) == -1) {
      UTSUSHI_LOG_DEBUG("libguestfs shutdown: {}", guestfs_last_error(m_handle.get()));
    }
  }
  m_handle.reset();
  m_state.reset();
}

Result<Session> Session::create(SessionOptions options) {
  GuestfsHandle g(guestfs_create_flags(0));
  if (!g) {
    return fail(Errc::unavailable, "libguestfs: cannot create a handle (is libguestfs installed?)");
  }
  guestfs_set_error_handler(g.get(), nullptr, nullptr);
  UTSUSHI_TRY(configure_backend(g.get()));
  if (options.memsize_mib > 0 && guestfs_set_memsize(g.get(), options.memsize_mib) == -1) {
    return fail(Errc::invalid_argument, std::string("libguestfs memsize: ") + guestfs_last_error(g.get()));
  }
  if (options.smp > 0 && guestfs_set_smp(g.get(), options.smp) == -1) {
    return fail(Errc::invalid_argument, std::string("libguestfs smp: ") + guestfs_last_error(g.get()));
  }
  if (!options.identifier.empty()) {
    (void)guestfs_set_identifier(g.get(), options.identifier.c_str());
  }
  (void)guestfs_set_network(g.get(), 0);  // nothing is ever installed from a network
  if (log::enabled(log::Level::trace)) {
    (void)guestfs_set_verbose(g.get(), 1);
  }
  auto state = std::make_unique<State>();
  state->progress = std::move(options.progress);
  if (guestfs_set_event_callback(g.get(), on_event, GUESTFS_EVENT_PROGRESS | k_log_events, 0, state.get()) == -1) {
    return fail(Errc::internal, std::string("libguestfs events: ") + guestfs_last_error(g.get()));
  }
  return Session(std::move(g), std::move(state));
}

guestfs_h* Session::handle() const noexcept { return m_handle.get(); }

Error Session::error(std::string_view what) const {
  if (cancel_requested() || (m_state && m_state->killed_for_cancel)) {
    return Error(Errc::cancelled, std::string(what) + ": interrupted");
  }
  const char* msg = guestfs_last_error(m_handle.get());
  int err = guestfs_last_errno(m_handle.get());
  Errc code = err == ENOENT ? Errc::not_found : Errc::io_error;
  return Error(code, std::string(what) + ": " + (msg != nullptr ? msg : "libguestfs call failed"), err);
}

Result<void> Session::check_launched(std::string_view what) const {
  if (!m_state->launched || m_state->shut_down) {
    return fail(Errc::internal, std::string(what) + ": the appliance is not running");
  }
  return {};
}

Result<void> Session::add_disk(const DiskSpec& disk) {
  if (m_state->launched) {
    return fail(Errc::internal, "add_disk after launch: " + disk.path);
  }
  if (disk.format.empty()) {
    return fail(Errc::invalid_argument, "the format of " + disk.path + " must be named (disks are never probed)");
  }
  int readonly = disk.access == DiskAccess::read_only ? 1 : 0;
  if (guestfs_add_drive_opts(m_handle.get(), disk.path.c_str(), GUESTFS_ADD_DRIVE_OPTS_FORMAT, disk.format.c_str(),
                             GUESTFS_ADD_DRIVE_OPTS_READONLY, readonly, -1) == -1) {
    return std::unexpected(error("adding " + disk.path));
  }
  m_state->disks.push_back(disk);
  return {};
}

Result<void> Session::launch() {
  if (m_state->launched) {
    return fail(Errc::internal, "the appliance is already running");
  }
  UTSUSHI_TRY(check_cancelled());
  UTSUSHI_LOG_INFO("launching the libguestfs appliance with {} disk(s)", m_state->disks.size());
  if (guestfs_launch(m_handle.get()) == -1) {
    return std::unexpected(error("launching the libguestfs appliance"));
  }
  m_state->launched = true;
  m_state->appliance_pid = guestfs_get_pid(m_handle.get());
  m_state->cancel_watch = std::jthread(watch_cancel, m_state.get());
  std::vector<std::string> devices = take_list(guestfs_list_devices(m_handle.get()));
  if (devices.size() < m_state->disks.size()) {
    return fail(Errc::internal, "libguestfs lists fewer devices than disks added");
  }
  devices.resize(m_state->disks.size());
  m_state->devices = std::move(devices);
  return {};
}

std::size_t Session::disk_count() const noexcept { return m_state->devices.size(); }

Result<std::string> Session::disk_device(std::size_t index) const {
  UTSUSHI_TRY(check_launched("disk_device"));
  if (index >= m_state->devices.size()) {
    return fail(Errc::out_of_range, "no disk " + std::to_string(index));
  }
  return m_state->devices[index];
}

Result<void> Session::shutdown() {
  UTSUSHI_TRY(check_launched("shutdown"));
  m_state->cancel_watch = {};
  int rc = guestfs_shutdown(m_handle.get());
  m_state->shut_down = true;
  if (rc == -1) {
    return std::unexpected(error("shutting down the appliance"));
  }
  return {};
}

// ---- files ----

namespace {

Result<bool> flag(const Session& s, int rc, std::string_view what, const std::string& path) {
  if (rc == -1) {
    return std::unexpected(s.error(std::string(what) + " " + path));
  }
  return rc != 0;
}

}  // namespace

Result<bool> Session::exists(const std::string& path) {
  return flag(*this, guestfs_exists(m_handle.get(), path.c_str()), "exists", path);
}

Result<bool> Session::is_file(const std::string& path) {
  return flag(*this, guestfs_is_file_opts(m_handle.get(), path.c_str(), GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1),
              "is_file", path);
}

Result<bool> Session::is_dir(const std::string& path) {
  return flag(*this, guestfs_is_dir_opts(m_handle.get(), path.c_str(), GUESTFS_IS_DIR_OPTS_FOLLOWSYMLINKS, 1, -1),
              "is_dir", path);
}

Result<bool> Session::is_symlink(const std::string& path) {
  return flag(*this, guestfs_is_symlink(m_handle.get(), path.c_str()), "is_symlink", path);
}

// pread replies in one message; libguestfs's read_file goes through its
// file-transfer protocol (~100 ms a file under TCG, against ~2 ms).
Result<std::string> Session::read_file(const std::string& path) {
  static constexpr int k_chunk = 1 << 20;  // well under the 4 MiB message limit
  std::string out;
  for (;;) {
    std::size_t got = 0;
    char* data = guestfs_pread(m_handle.get(), path.c_str(), k_chunk, static_cast<std::int64_t>(out.size()), &got);
    if (data == nullptr) {
      return std::unexpected(error("reading " + path));
    }
    out.append(data, got);
    std::free(data);
    if (got < static_cast<std::size_t>(k_chunk)) {
      return out;
    }
  }
}

namespace {

bool absent_errno(int err) { return err == ENOENT || err == ENOTDIR; }

std::string parent_of(const std::string& path) {
  std::size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

FileStat file_stat(const struct guestfs_statns& st) {
  return {.mode = static_cast<unsigned>(st.st_mode),
          .uid = static_cast<long>(st.st_uid),
          .gid = static_cast<long>(st.st_gid),
          .size = static_cast<long long>(st.st_size)};
}

}  // namespace

// Whether a failed call on `path` failed because the path does not exist: its
// errno says so; without one, ask (one more round trip, on failures only).
Result<bool> Session::absent(const Error& e, const std::string& path) {
  if (e.code() == Errc::cancelled) {
    return false;
  }
  return e.sys_errno() != 0 ? absent_errno(e.sys_errno()) : !UTSUSHI_TRY(exists(path));
}

Result<std::optional<std::string>> Session::read_file_if_exists(const std::string& path) {
  Result<std::string> r = read_file(path);
  if (r) {
    return std::optional<std::string>(std::move(*r));
  }
  if (UTSUSHI_TRY(absent(r.error(), path))) {
    return std::optional<std::string>();
  }
  return std::unexpected(std::move(r.error()));
}

Result<std::optional<FileStat>> Session::lstat(const std::string& path) {
  struct guestfs_statns* st = guestfs_lstatns(m_handle.get(), path.c_str());
  if (st == nullptr) {
    Error e = error("lstat " + path);
    if (UTSUSHI_TRY(absent(e, path))) {
      return std::optional<FileStat>();
    }
    return std::unexpected(std::move(e));
  }
  FileStat out = file_stat(*st);
  guestfs_free_statns(st);
  return std::optional<FileStat>(out);
}

// Round trips: lstat, rm_f of a stale temporary, write, rename; chmod and chown
// only when the replaced file's differ from a new file's (0644 root:root: the
// appliance daemon's umask is 022); mkdir_p only for a new file.
Result<void> Session::write_file(const std::string& path, std::string_view content) {
  std::string target = path;
  std::optional<FileStat> st = UTSUSHI_TRY(lstat(path));
  if (st && st->is_symlink()) {
    char* real = guestfs_realpath(m_handle.get(), path.c_str());
    if (real == nullptr) {
      return std::unexpected(error("resolving " + path));
    }
    target = take_string(real);
    st = UTSUSHI_TRY(lstat(target));
  }
  if (!st) {
    UTSUSHI_TRY(mkdir_p(parent_of(target)));
  }
  const unsigned mode = st ? st->permissions() : 0644;
  const long uid = st ? st->uid : 0, gid = st ? st->gid : 0;
  const std::string temp = target + ".utsushi-tmp";
  // A temporary left by an interrupted run would keep its own mode and owner.
  if (guestfs_rm_f(m_handle.get(), temp.c_str()) == -1) {
    return std::unexpected(error("removing " + temp));
  }
  if (guestfs_write(m_handle.get(), temp.c_str(), content.data(), content.size()) == -1) {
    return std::unexpected(error("writing " + temp));
  }
  if ((mode != 0644 && guestfs_chmod(m_handle.get(), static_cast<int>(mode), temp.c_str()) == -1) ||
      ((uid != 0 || gid != 0) && guestfs_chown(m_handle.get(), static_cast<int>(uid), static_cast<int>(gid), temp.c_str()) == -1) ||
      guestfs_rename(m_handle.get(), temp.c_str(), target.c_str()) == -1) {
    Error e = error("replacing " + target);
    (void)guestfs_rm_f(m_handle.get(), temp.c_str());
    return std::unexpected(std::move(e));
  }
  return {};
}

Result<void> Session::copy_file(const std::string& from, const std::string& to) {
  if (guestfs_cp(m_handle.get(), from.c_str(), to.c_str()) == -1) {
    return std::unexpected(error("copying " + from + " to " + to));
  }
  return {};
}

Result<void> Session::remove(const std::string& path) {
  if (guestfs_rm_f(m_handle.get(), path.c_str()) == -1) {
    return std::unexpected(error("removing " + path));
  }
  return {};
}

Result<void> Session::mkdir_p(const std::string& path) {
  if (guestfs_mkdir_p(m_handle.get(), path.c_str()) == -1) {
    return std::unexpected(error("creating directory " + path));
  }
  return {};
}

Result<void> Session::symlink(const std::string& target, const std::string& link) {
  if (guestfs_ln_sf(m_handle.get(), target.c_str(), link.c_str()) == -1) {
    return std::unexpected(error("linking " + link + " to " + target));
  }
  return {};
}

Result<std::string> Session::readlink(const std::string& path) {
  char* s = guestfs_readlink(m_handle.get(), path.c_str());
  if (s == nullptr) {
    return std::unexpected(error("readlink " + path));
  }
  return take_string(s);
}

Result<std::vector<std::string>> Session::ls(const std::string& dir) {
  char** list = guestfs_ls(m_handle.get(), dir.c_str());
  if (list == nullptr) {
    return std::unexpected(error("listing " + dir));
  }
  std::vector<std::string> names = take_list(list);
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::vector<std::string>> Session::glob(const std::string& pattern) {
  char** list = guestfs_glob_expand(m_handle.get(), pattern.c_str());
  if (list == nullptr) {
    return std::unexpected(error("glob " + pattern));
  }
  std::vector<std::string> paths = take_list(list);
  std::sort(paths.begin(), paths.end());
  return paths;
}

namespace {

bool has_wildcard(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

}  // namespace

Result<std::vector<std::string>> Session::glob(std::span<const std::string_view> patterns) {
  // Listings of this call (nullopt: the directory does not exist).
  std::map<std::string, std::optional<std::vector<std::string>>> listed;
  auto listing = [&](const std::string& dir) -> Result<const std::optional<std::vector<std::string>>*> {
    if (auto it = listed.find(dir); it != listed.end()) {
      return &it->second;
    }
    std::string parent = parent_of(dir), name = dir.substr(dir.rfind('/') + 1);
    auto up = listed.find(parent);
    if (dir != "/" && up != listed.end() &&
        (!up->second || std::find(up->second->begin(), up->second->end(), name) == up->second->end())) {
      return &(listed[dir] = std::nullopt);
    }
    char** list = guestfs_ls(m_handle.get(), dir.c_str());
    if (list == nullptr) {
      Error e = error("listing " + dir);
      if (!UTSUSHI_TRY(absent(e, dir))) {
        return std::unexpected(std::move(e));
      }
      return &(listed[dir] = std::nullopt);
    }
    return &(listed[dir] = take_list(list));
  };
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (std::string_view pattern : patterns) {
    std::size_t slash = pattern.rfind('/');
    std::string dir = slash == 0 ? "/" : std::string(pattern.substr(0, slash));
    std::string last(pattern.substr(slash + 1));
    std::vector<std::string> matches;
    if (slash == std::string_view::npos || has_wildcard(dir)) {
      matches = UTSUSHI_TRY(glob(std::string(pattern)));
    } else if (const auto* names = UTSUSHI_TRY(listing(dir)); *names) {
      for (const std::string& n : **names) {
        if (fnmatch(last.c_str(), n.c_str(), FNM_PERIOD) == 0) {
          matches.push_back(dir == "/" ? "/" + n : dir + "/" + n);
        }
      }
      std::sort(matches.begin(), matches.end());
    }
    for (std::string& m : matches) {
      if (seen.insert(m).second) {
        out.push_back(std::move(m));
      }
    }
  }
  return out;
}

Result<std::string> Session::case_sensitive_path(const std::string& path) {
  char* s = guestfs_case_sensitive_path(m_handle.get(), path.c_str());
  if (s == nullptr) {
    return path;
  }
  return take_string(s);
}

Result<CommandResult> Session::run(const std::vector<std::string>& argv) {
  UTSUSHI_TRY(check_launched("run"));
  UTSUSHI_TRY(check_cancelled());
  static constexpr std::string_view k_marker = "@@utsushi-exit=";
  std::vector<std::string> args{"/bin/sh", "-c",
                                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C; "
                                "export PATH LC_ALL; \"$@\" </dev/null 2>&1; echo \"@@utsushi-exit=$?\"",
                                "sh"};
  args.insert(args.end(), argv.begin(), argv.end());
  UTSUSHI_LOG_DEBUG("in the guest: {}", fmt::join(argv, " "));
  char* out = guestfs_command(m_handle.get(), Argv(args).get());
  if (out == nullptr) {
    return std::unexpected(error("running " + (argv.empty() ? std::string() : argv[0]) + " in the guest"));
  }
  std::string text = take_string(out);
  CommandResult r;
  std::size_t pos = text.rfind(k_marker);
  if (pos == std::string::npos) {
    return fail(Errc::io_error, "running " + argv.at(0) + " in the guest: no exit status");
  }
  r.exit_code = std::atoi(text.c_str() + pos + k_marker.size());
  text.resize(pos);
  r.output = std::move(text);
  return r;
}

// ---- devices ----

Result<std::vector<std::string>> Session::inspection_roots() {
  UTSUSHI_TRY(check_launched("inspection"));
  char** roots = m_state->inspected ? guestfs_inspect_get_roots(m_handle.get()) : guestfs_inspect_os(m_handle.get());
  if (roots == nullptr) {
    return std::unexpected(error("inspecting the disks"));
  }
  m_state->inspected = true;
  return take_list(roots);
}

namespace {

Result<std::string> string_call(const Session& s, char* value, std::string_view what) {
  if (value == nullptr) {
    return std::unexpected(s.error(what));
  }
  return take_string(value);
}

}  // namespace

Result<std::vector<std::string>> Session::list_partitions() {
  char** list = guestfs_list_partitions(m_handle.get());
  if (list == nullptr) {
    return std::unexpected(error("listing partitions"));
  }
  return take_list(list);
}

Result<std::vector<std::string>> Session::list_lvs() {
  char** list = guestfs_lvs(m_handle.get());
  if (list == nullptr) {
    return std::unexpected(error("listing logical volumes"));
  }
  return take_list(list);
}

Result<std::vector<std::string>> Session::list_md_devices() {
  char** list = guestfs_list_md_devices(m_handle.get());
  if (list == nullptr) {
    return std::unexpected(error("listing MD devices"));
  }
  return take_list(list);
}

Result<std::map<std::string, std::string>> Session::blkid(const std::string& device) {
  UTSUSHI_TRY(check_launched("blkid"));
  if (auto it = m_state->device_tags.find(device); it != m_state->device_tags.end()) {
    return it->second;
  }
  std::map<std::string, std::string> tags;
  char** list = guestfs_blkid(m_handle.get(), device.c_str());
  if (list != nullptr) {  // none: no signature (blkid exits 2, which libguestfs reports as an error)
    std::vector<std::string> kv = take_list(list);
    for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
      tags[kv[i]] = kv[i + 1];
    }
  }
  UTSUSHI_TRY(check_cancelled());
  m_state->device_tags[device] = tags;
  return tags;
}

void Session::forget_device_tags() noexcept {
  if (m_state) {
    m_state->device_tags.clear();
  }
}

namespace {

std::string tag(const std::map<std::string, std::string>& tags, const char* name) {
  auto it = tags.find(name);
  return it == tags.end() ? std::string() : it->second;
}

}  // namespace

Result<std::string> Session::vfs_type(const std::string& device) { return tag(UTSUSHI_TRY(blkid(device)), "TYPE"); }

Result<std::string> Session::vfs_uuid(const std::string& device) { return tag(UTSUSHI_TRY(blkid(device)), "UUID"); }

Result<std::string> Session::vfs_label(const std::string& device) { return tag(UTSUSHI_TRY(blkid(device)), "LABEL"); }

Result<std::string> Session::partition_table(const std::string& disk) {
  char* s = guestfs_part_get_parttype(m_handle.get(), disk.c_str());
  return s == nullptr ? std::string() : take_string(s);
}

Result<std::string> Session::partition_disk(const std::string& partition) {
  return string_call(*this, guestfs_part_to_dev(m_handle.get(), partition.c_str()), "part_to_dev " + partition);
}

Result<int> Session::partition_number(const std::string& partition) {
  int n = guestfs_part_to_partnum(m_handle.get(), partition.c_str());
  if (n == -1) {
    return std::unexpected(error("part_to_partnum " + partition));
  }
  return n;
}

Result<std::string> Session::partition_type(const std::string& partition) {
  std::string type = tag(UTSUSHI_TRY(blkid(partition)), "PART_ENTRY_TYPE");
  if (!type.empty()) {
    bool mbr = type.starts_with("0x");  // MBR ids lower case ("0xef"), GPT GUIDs upper case
    std::transform(type.begin(), type.end(), type.begin(), [mbr](unsigned char c) {
      return static_cast<char>(mbr ? std::tolower(c) : std::toupper(c));
    });
    return type;
  }
  std::string disk = UTSUSHI_TRY(partition_disk(partition));
  int n = UTSUSHI_TRY(partition_number(partition));
  std::string table = UTSUSHI_TRY(partition_table(disk));
  if (table == "gpt") {
    return string_call(*this, guestfs_part_get_gpt_type(m_handle.get(), disk.c_str(), n), "gpt type " + partition);
  }
  if (table == "msdos") {
    int id = guestfs_part_get_mbr_id(m_handle.get(), disk.c_str(), n);
    if (id == -1) {
      return std::unexpected(error("mbr id " + partition));
    }
    return fmt::format("{:#04x}", id);
  }
  return std::string();
}

Result<std::vector<std::uint8_t>> Session::pread_device(const std::string& device, std::size_t size,
                                                        std::uint64_t offset) {
  std::size_t got = 0;
  char* data = guestfs_pread_device(m_handle.get(), device.c_str(), static_cast<int>(size),
                                    static_cast<std::int64_t>(offset), &got);
  if (data == nullptr) {
    return std::unexpected(error("reading " + device));
  }
  std::vector<std::uint8_t> out(data, data + got);
  std::free(data);
  return out;
}

Result<void> Session::mount(const std::string& device, const std::string& mountpoint, const std::string& options) {
  UTSUSHI_TRY(check_launched("mount"));
  if (guestfs_mount_options(m_handle.get(), options.c_str(), device.c_str(), mountpoint.c_str()) == -1) {
    return std::unexpected(error("mounting " + device + " on " + mountpoint));
  }
  return {};
}

Result<void> Session::umount_all() {
  if (guestfs_umount_all(m_handle.get()) == -1) {
    return std::unexpected(error("unmounting the guest"));
  }
  return {};
}

Result<void> Session::lvm_set_filter(const std::vector<std::string>& devices) {
  int rc = devices.empty() ? guestfs_lvm_clear_filter(m_handle.get())
                           : guestfs_lvm_set_filter(m_handle.get(), Argv(devices).get());
  if (rc == -1) {
    return std::unexpected(error("setting the LVM filter"));
  }
  return {};
}

Result<void> Session::vg_activate_all(bool active) {
  if (guestfs_vg_activate_all(m_handle.get(), active ? 1 : 0) == -1) {
    return std::unexpected(error(active ? "activating volume groups" : "deactivating volume groups"));
  }
  return {};
}

}  // namespace utsushi::guest

namespace utsushi::guest {

void GuestfsCloser::operator()(guestfs_h* g) const noexcept { guestfs_close(g); }

}  // namespace utsushi::guest
