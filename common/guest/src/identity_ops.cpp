// The identity operations' table and the guest actions they share
// (identity_util.h).
#include <guestfs.h>

#include <fmt/core.h>

#include "identity_util.h"

namespace utsushi::guest {

OperationList identity_operations(const IdentityParams& p) {
  using namespace identity;
  OperationList ops;
  for (auto make : {make_machine_id, make_hostname, make_ssh_hostkeys, make_random_seed, make_udev_persistent_net,
                    make_net_hwaddr, make_net_address, make_nm_connection_uuids, make_dhcp_client_state,
                    make_cloud_init_state, make_logfiles, make_shell_history, make_tmp_files, make_authorized_keys,
                    make_root_password, make_firstboot, make_run_scripts}) {
    ops.push_back(make(p));
  }
  return ops;
}

namespace identity {

Result<void> remove_path(Target& t, const std::string& path, std::string detail) {
  Change c;
  c.kind = ChangeKind::file;
  c.target = path;
  c.detail = std::move(detail);
  std::optional<FileStat> st = UTSUSHI_TRY(t.session().lstat(path));
  if (!st) {
    return {};  // gone already
  }
  c.before = st->is_dir() ? std::string("<directory>") : fmt::format("<{} bytes>", st->size);
  // rm_f unlinks in the appliance's daemon; rm_rf runs rm(1) (~30 ms under TCG).
  guestfs_h* g = t.session().handle();
  if (t.applying() && (st->is_dir() ? guestfs_rm_rf(g, path.c_str()) : guestfs_rm_f(g, path.c_str())) == -1) {
    return std::unexpected(t.session().error("removing " + path));
  }
  t.record(std::move(c));
  return {};
}

Result<std::size_t> remove_glob(Target& t, std::span<const std::string_view> patterns, const std::string& detail) {
  std::vector<std::string> paths = UTSUSHI_TRY(t.session().glob(patterns));
  for (const std::string& p : paths) {
    UTSUSHI_TRY(remove_path(t, p, detail));
  }
  return paths.size();
}

Result<std::size_t> empty_dir(Target& t, const std::string& dir, const std::string& detail) {
  if (!UTSUSHI_TRY(t.session().is_dir(dir))) {
    return 0;
  }
  std::vector<std::string> names = UTSUSHI_TRY(t.session().ls(dir));
  for (const std::string& n : names) {
    UTSUSHI_TRY(remove_path(t, dir + "/" + n, detail));
  }
  return names.size();
}

Result<void> write_secret(Target& t, const std::string& path, const std::string& content, int mode, std::string detail) {
  Change c;
  c.kind = ChangeKind::file;
  c.target = path;
  Session& s = t.session();
  guestfs_h* g = s.handle();
  int uid = 0, gid = 0;
  std::optional<FileStat> st = UTSUSHI_TRY(s.lstat(path));
  if (st) {
    c.before = "<secret>";
    uid = static_cast<int>(st->uid);
    gid = static_cast<int>(st->gid);
    if (mode < 0) {
      mode = static_cast<int>(st->permissions());
    }
  }
  if (mode < 0) {
    mode = 0600;
  }
  c.after = fmt::format("<secret: {} bytes>", content.size());
  c.detail = std::move(detail);
  if (t.applying()) {
    if (!st) {
      std::string dir = path.substr(0, path.rfind('/'));
      UTSUSHI_TRY(s.mkdir_p(dir.empty() ? "/" : dir));
    }
    // The temporary has its mode and owner before any content is written (a
    // stale one, left by an interrupted run, is removed first: it keeps its own).
    const std::string temp = path + ".utsushi-tmp";
    if (guestfs_rm_f(g, temp.c_str()) == -1 || guestfs_touch(g, temp.c_str()) == -1 || guestfs_chmod(g, mode, temp.c_str()) == -1 ||
        ((uid != 0 || gid != 0) && guestfs_chown(g, uid, gid, temp.c_str()) == -1) ||
        guestfs_write(g, temp.c_str(), content.data(), content.size()) == -1 ||
        guestfs_rename(g, temp.c_str(), path.c_str()) == -1) {
      Error e = s.error("writing " + path);
      (void)guestfs_rm_f(g, temp.c_str());
      return std::unexpected(std::move(e));
    }
  }
  t.record(std::move(c));
  return {};
}

Result<void> set_mode(Target& t, const std::string& path, int mode) {
  if (t.applying() && guestfs_chmod(t.session().handle(), mode, path.c_str()) == -1) {
    return std::unexpected(t.session().error(fmt::format("chmod {:o} {}", mode, path)));
  }
  return {};
}

}  // namespace identity
}  // namespace utsushi::guest
