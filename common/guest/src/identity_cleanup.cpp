// cloud-init-state, logfiles, shell-history, tmp-files (identity_ops.h):
// what the golden machine left behind that a clone must not carry.
#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <string_view>

#include "identity_util.h"

namespace utsushi::guest::identity {
namespace {

// /var/log entries removed whole (files, rotations, directories of one
// service). Directories of the log tree itself are kept so services can write.
constexpr std::array<std::string_view, 26> k_log_globs = {
    "/var/log/*.log",       "/var/log/*.log.*",       "/var/log/*.old",      "/var/log/*.gz",
    "/var/log/messages*",   "/var/log/syslog*",       "/var/log/secure*",    "/var/log/maillog*",
    "/var/log/mail.*",      "/var/log/cron*",         "/var/log/debug*",     "/var/log/dmesg*",
    "/var/log/wtmp*",       "/var/log/btmp*",         "/var/log/lastlog",    "/var/log/faillog",
    "/var/log/tallylog",    "/var/log/apt/*",         "/var/log/audit/*",    "/var/log/installer",
    "/var/log/anaconda",    "/var/log/sa/*",          "/var/log/ntpstats/*", "/var/log/private/*",
    "/var/log/cloud-init*", "/var/log/unattended-upgrades/*",
};

// History files in a home directory (shells, interpreters, pagers, editors).
constexpr std::array<std::string_view, 14> k_history_files = {
    ".bash_history", ".zsh_history",    ".history",         ".sh_history",       ".ash_history",
    ".python_history", ".mysql_history", ".psql_history",   ".sqlite_history",   ".lesshst",
    ".viminfo",      ".wget-hsts",      ".node_repl_history", ".rediscli_history",
};

Result<void> cloud_init_state(Target& t) {
  if (!UTSUSHI_TRY(t.session().is_dir("/var/lib/cloud"))) {
    return {};
  }
  for (const std::string& n : UTSUSHI_TRY(t.session().ls("/var/lib/cloud"))) {
    if (n != "seed") {  // a NoCloud seed the clone may be meant to use
      UTSUSHI_TRY(remove_path(t, "/var/lib/cloud/" + n, "cloud-init's instance state: the clone is a new instance"));
    }
  }
  return {};
}

Result<void> logfiles(Target& t) {
  UTSUSHI_TRY(remove_glob(t, k_log_globs, "a log of the golden machine"));
  // The journal: one directory per machine id; /var/log/journal itself stays
  // so journald keeps storing persistently.
  UTSUSHI_TRY(empty_dir(t, "/var/log/journal", "the golden machine's journal"));
  return {};
}

Result<void> shell_history(Target& t) {
  std::vector<std::string> homes{"/root"};
  for (std::string& h : UTSUSHI_TRY(t.session().glob("/home/*"))) {
    homes.push_back(std::move(h));
  }
  for (const std::string& home : homes) {
    if (!UTSUSHI_TRY(t.session().is_dir(home))) {
      continue;
    }
    for (const std::string& n : UTSUSHI_TRY(t.session().ls(home))) {
      if (std::find(k_history_files.begin(), k_history_files.end(), n) != k_history_files.end()) {
        UTSUSHI_TRY(remove_path(t, home + "/" + n, "a history of the golden machine"));
      }
    }
    UTSUSHI_TRY(remove_path(t, home + "/.local/share/fish/fish_history", "a history of the golden machine"));
  }
  return {};
}

Result<void> tmp_files(Target& t) {
  for (const char* dir : {"/tmp", "/var/tmp"}) {
    UTSUSHI_TRY(empty_dir(t, dir, "a temporary file of the golden machine"));
  }
  return {};
}

}  // namespace

std::unique_ptr<Operation> make_cloud_init_state(const IdentityParams&) {
  return make_op("cloud-init-state", "cloud-init's instance state removed, so each clone is a new instance", "",
                 [](Target& t) { return cloud_init_state(t); });
}

std::unique_ptr<Operation> make_logfiles(const IdentityParams&) {
  return make_op("logfiles", "Logs and the journal removed (their directories kept)", "",
                 [](Target& t) { return logfiles(t); });
}

std::unique_ptr<Operation> make_shell_history(const IdentityParams&) {
  return make_op("shell-history", "Shell and tool histories of root and every user removed", "",
                 [](Target& t) { return shell_history(t); });
}

std::unique_ptr<Operation> make_tmp_files(const IdentityParams&) {
  return make_op("tmp-files", "/tmp and /var/tmp emptied", "", [](Target& t) { return tmp_files(t); });
}

}  // namespace utsushi::guest::identity
