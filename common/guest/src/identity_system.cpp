// machine-id, hostname, ssh-hostkeys, random-seed, authorized-keys,
// root-password (identity_ops.h).
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <ctime>

#include "identity_util.h"
#include "text_util.h"
#include "utsushi/guest/config_edit.h"
#include "utsushi/guest/identity_edit.h"

namespace utsushi::guest::identity {
namespace {

constexpr const char* k_machine_id = "/etc/machine-id";
constexpr const char* k_dbus_machine_id = "/var/lib/dbus/machine-id";

// The guest's systemd version from its shared library's name
// (libsystemd-shared-252.so); 0 when not found.
Result<int> systemd_version(Target& t) {
  for (const char* pattern : {"/usr/lib/*/systemd/libsystemd-shared-*.so", "/usr/lib/systemd/libsystemd-shared-*.so",
                              "/lib/systemd/libsystemd-shared-*.so"}) {
    for (const std::string& path : UTSUSHI_TRY(t.session().glob(pattern))) {
      std::size_t at = path.rfind("libsystemd-shared-") + 18;
      int version = 0;
      std::from_chars(path.data() + at, path.data() + path.size(), version);
      if (version > 0) {
        return version;
      }
    }
  }
  return 0;
}

Result<void> machine_id(Target& t, const IdentityParams& p) {
  if (!p.machine_id.empty()) {
    UTSUSHI_TRY(t.write(k_machine_id, p.machine_id + "\n", "a machine id of its own"));
  } else if (t.os().systemd) {
    int version = UTSUSHI_TRY(systemd_version(t));
    if (version >= 247) {
      UTSUSHI_TRY(t.write(k_machine_id, "uninitialized\n",
                          fmt::format("first boot (systemd {}): a new id is made and ConditionFirstBoot holds", version)));
    } else {
      UTSUSHI_TRY(t.write(k_machine_id, "",
                          fmt::format("empty: systemd {} makes a new id at boot", version == 0 ? "(version unknown)"
                                                                                               : std::to_string(version))));
    }
  } else {
    UTSUSHI_TRY(t.remove(k_machine_id, "no systemd: D-Bus makes a new id at boot"));
  }
  // D-Bus reads its own file; systemd falls back to it when /etc/machine-id is
  // not valid. A regular file there would keep the old id: it follows
  // /etc/machine-id instead.
  Session& s = t.session();
  if (UTSUSHI_TRY(s.exists(k_dbus_machine_id)) && !UTSUSHI_TRY(s.is_symlink(k_dbus_machine_id))) {
    UTSUSHI_TRY(t.remove(k_dbus_machine_id, "the old D-Bus machine id"));
    UTSUSHI_TRY(t.symlink(k_machine_id, k_dbus_machine_id, "the D-Bus machine id follows /etc/machine-id"));
  }
  return {};
}

Result<void> hostname(Target& t, const IdentityParams& p) {
  std::optional<std::string> old = UTSUSHI_TRY(t.read("/etc/hostname"));
  std::string old_name = old ? std::string(detail::trim(old->substr(0, old->find('\n')))) : t.os().hostname;
  UTSUSHI_TRY(t.write("/etc/hostname", p.hostname + "\n", "the clone's host name"));
  if (auto hosts = UTSUSHI_TRY(t.read("/etc/hosts"))) {
    Edited e = set_hosts_name(*hosts, old_name, p.hostname);
    if (e.changed()) {
      UTSUSHI_TRY(t.write("/etc/hosts", e.text, fmt::format("{}", fmt::join(e.edits, "; "))));
    }
  }
  // Red Hat's older place for it.
  if (auto network = UTSUSHI_TRY(t.read("/etc/sysconfig/network")); network && network->find("HOSTNAME=") != std::string::npos) {
    std::vector<std::string> lines = split_lines(*network);
    for (std::string& l : lines) {
      if (l.starts_with("HOSTNAME=")) {
        l = "HOSTNAME=" + p.hostname;
      }
    }
    UTSUSHI_TRY(t.write("/etc/sysconfig/network", join_lines(lines, true), "HOSTNAME="));
  }
  return {};
}

Result<void> ssh_hostkeys(Target& t, const IdentityParams& p) {
  for (const std::string& old : UTSUSHI_TRY(t.session().glob("/etc/ssh/ssh_host_*key*"))) {
    std::string file = old.substr(old.rfind('/') + 1);
    bool renewed = std::any_of(p.host_keys.begin(), p.host_keys.end(), [&](const HostKey& k) {
      std::string base = "ssh_host_" + k.type + "_key";
      return file == base || file == base + ".pub";
    });
    if (!renewed) {
      UTSUSHI_TRY(remove_path(t, old, "an old host key"));
    }
  }
  for (const HostKey& k : p.host_keys) {
    std::string path = "/etc/ssh/ssh_host_" + k.type + "_key";
    UTSUSHI_TRY(write_secret(t, path, k.private_key, 0600, fmt::format("a new {} host key", k.type)));
    UTSUSHI_TRY(t.write(path + ".pub", k.public_key, fmt::format("its public key")));
    UTSUSHI_TRY(set_mode(t, path + ".pub", 0644));
  }
  if (p.host_keys.empty()) {
    t.note("/etc/ssh", "old host keys removed and none written: an sshd that does not make its own (Debian's) "
                       "will not start");
  }
  return {};
}

Result<void> random_seed(Target& t) {
  bool any = false;
  for (const char* path : {"/var/lib/systemd/random-seed", "/var/lib/urandom/random-seed"}) {
    if (UTSUSHI_TRY(t.exists(path))) {
      std::vector<std::uint8_t> seed = random_bytes(512);
      UTSUSHI_TRY(write_secret(t, path, std::string(seed.begin(), seed.end()), 0600, "a new seed from the host's kernel"));
      any = true;
    }
  }
  if (!any && t.os().systemd) {
    std::vector<std::uint8_t> seed = random_bytes(512);
    UTSUSHI_TRY(write_secret(t, "/var/lib/systemd/random-seed", std::string(seed.begin(), seed.end()), 0600,
                             "a seed from the host's kernel"));
  }
  return {};
}

Result<void> authorized_keys(Target& t, const IdentityParams& p) {
  const std::string path = "/root/.ssh/authorized_keys";
  std::string text = UTSUSHI_TRY(t.read(path)).value_or("");
  std::vector<std::string> lines = split_lines(text);
  std::size_t added = 0;
  for (const std::string& key : p.authorized_keys) {
    std::string k(detail::trim(key));
    if (!k.empty() && std::find(lines.begin(), lines.end(), k) == lines.end()) {
      lines.push_back(k);
      ++added;
    }
  }
  if (added > 0) {
    UTSUSHI_TRY(t.write(path, join_lines(lines, true), fmt::format("{} key(s) added", added)));
    UTSUSHI_TRY(set_mode(t, "/root/.ssh", 0700));
    UTSUSHI_TRY(set_mode(t, path, 0600));
  }
  return {};
}

Result<void> root_password(Target& t, const IdentityParams& p) {
  std::optional<std::string> shadow = UTSUSHI_TRY(t.read("/etc/shadow"));
  if (!shadow) {
    return fail(Errc::not_supported, "the guest has no /etc/shadow");
  }
  Edited e = UTSUSHI_TRY(set_shadow_password(*shadow, "root", p.root_password_hash, days_since_epoch(std::time(nullptr))));
  if (e.changed()) {
    // The hash must not reach the report: recorded as a secret.
    UTSUSHI_TRY(write_secret(t, "/etc/shadow", e.text, -1, "root's new password"));
  }
  return {};
}

}  // namespace

std::unique_ptr<Operation> make_machine_id(const IdentityParams& p) {
  return make_op("machine-id", "A new machine id (or systemd's first-boot state); the D-Bus id follows it", "",
                 [p](Target& t) { return machine_id(t, p); });
}

std::unique_ptr<Operation> make_hostname(const IdentityParams& p) {
  return make_op("hostname", "The host name in /etc/hostname and /etc/hosts", p.hostname.empty() ? "no host name given" : "",
                 [p](Target& t) { return hostname(t, p); });
}

std::unique_ptr<Operation> make_ssh_hostkeys(const IdentityParams& p) {
  return make_op("ssh-hostkeys", "New SSH host keys (made on the host, fingerprints known) replace the old ones", "",
                 [p](Target& t) { return ssh_hostkeys(t, p); });
}

std::unique_ptr<Operation> make_random_seed(const IdentityParams&) {
  return make_op("random-seed", "New random seeds, so clones do not share entropy", "",
                 [](Target& t) { return random_seed(t); });
}

std::unique_ptr<Operation> make_authorized_keys(const IdentityParams& p) {
  return make_op("authorized-keys", "SSH public keys added to root's authorized_keys",
                 p.authorized_keys.empty() ? "no keys given" : "", [p](Target& t) { return authorized_keys(t, p); });
}

std::unique_ptr<Operation> make_root_password(const IdentityParams& p) {
  return make_op("root-password", "Root's password set (from a hash; never stored in clear)",
                 p.root_password_hash.empty() ? "no password given" : "",
                 [p](Target& t) { return root_password(t, p); });
}

}  // namespace utsushi::guest::identity
