// firstboot and run-scripts (identity_ops.h): the user's own customisation,
// once at first boot or now inside the guest.
#include <fmt/core.h>

#include "identity_util.h"

namespace utsushi::guest::identity {
namespace {

constexpr const char* k_firstboot_log = "/var/log/utsushi-firstboot.log";
constexpr const char* k_firstboot_wants = "/etc/systemd/system/multi-user.target.wants/utsushi-firstboot.service";

// A name safe in a file name: anything but [A-Za-z0-9._-] becomes '_'.
std::string file_safe(const std::string& name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    out.push_back(ok ? c : '_');
  }
  return out.empty() ? "script" : out;
}

std::string runner() {
  return fmt::format(
      "#!/bin/sh\n"
      "# Written by utsushi clone: runs each first-boot script once, in name order;\n"
      "# a script is moved to done/ before it runs, its output goes to {1}.\n"
      "dir={0}\n"
      "mkdir -p \"$dir/done\"\n"
      "for s in \"$dir\"/scripts/*; do\n"
      "  [ -f \"$s\" ] || continue\n"
      "  n=$(basename \"$s\")\n"
      "  mv \"$s\" \"$dir/done/$n\"\n"
      "  echo \"=== $n\" >>{1}\n"
      "  sh \"$dir/done/$n\" >>{1} 2>&1\n"
      "  echo \"=== $n: exit $?\" >>{1}\n"
      "done\n",
      k_firstboot_dir, k_firstboot_log);
}

std::string unit() {
  return fmt::format(
      "# Written by utsushi clone.\n"
      "[Unit]\n"
      "Description=utsushi clone first-boot scripts\n"
      "After=network.target\n"
      "ConditionDirectoryNotEmpty={0}/scripts\n\n"
      "[Service]\n"
      "Type=oneshot\n"
      "ExecStart=/bin/sh {0}/run\n"
      "RemainAfterExit=yes\n\n"
      "[Install]\n"
      "WantedBy=multi-user.target\n",
      k_firstboot_dir);
}

Result<void> firstboot(Target& t, const IdentityParams& p) {
  if (!t.os().systemd) {
    return fail(Errc::not_supported, "first-boot scripts need systemd in the guest");
  }
  const std::string dir = k_firstboot_dir;
  std::size_t first = UTSUSHI_TRY(t.session().glob(dir + "/scripts/*")).size();
  for (std::size_t i = 0; i < p.firstboot.size(); ++i) {
    std::string path = fmt::format("{}/scripts/{:02}-{}", dir, first + i + 1, file_safe(p.firstboot[i].name));
    UTSUSHI_TRY(t.write(path, p.firstboot[i].content, "a first-boot script"));
  }
  UTSUSHI_TRY(t.write(dir + "/run", runner(), "runs the first-boot scripts once"));
  UTSUSHI_TRY(t.write(k_firstboot_unit, unit(), "starts the runner at boot"));
  UTSUSHI_TRY(t.symlink(k_firstboot_unit, k_firstboot_wants, "enabled"));
  t.service("utsushi-firstboot.service", "enabled: runs the first-boot scripts at the next boot");
  return {};
}

Result<void> run_scripts(Target& t, const IdentityParams& p) {
  for (std::size_t i = 0; i < p.run.size(); ++i) {
    const Script& s = p.run[i];
    std::string path = fmt::format("/tmp/utsushi-run-{}-{}", i + 1, file_safe(s.name));
    UTSUSHI_TRY(t.write(path, s.content, "the script to run"));
    auto r = UTSUSHI_TRY(t.run({"/bin/sh", path}, fmt::format("script {}", s.name)));
    UTSUSHI_TRY(t.remove(path, "the script, after it ran"));
    if (r && !r->ok()) {
      std::string tail = r->output.size() > 1500 ? "..." + r->output.substr(r->output.size() - 1500) : r->output;
      return fail(Errc::failed_precondition,
                  fmt::format("script {} failed in the guest (exit {}): {}", s.name, r->exit_code, tail));
    }
  }
  return {};
}

}  // namespace

std::unique_ptr<Operation> make_firstboot(const IdentityParams& p) {
  return make_op("firstboot", "Scripts installed to run once at first boot (systemd unit)",
                 p.firstboot.empty() ? "no first-boot scripts given" : "", [p](Target& t) { return firstboot(t, p); });
}

std::unique_ptr<Operation> make_run_scripts(const IdentityParams& p) {
  return make_op("run-scripts", "Scripts run inside the guest now (/bin/sh, no network)",
                 p.run.empty() ? "no scripts given" : "", [p](Target& t) { return run_scripts(t, p); });
}

}  // namespace utsushi::guest::identity
