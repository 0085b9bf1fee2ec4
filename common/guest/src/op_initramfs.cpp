// initramfs (see boot_ops.h): the guest's own tool, run inside the guest.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <set>

#include "op_util.h"
#include "text_util.h"
#include "utsushi/guest/boot_ops.h"

namespace utsushi::guest {

std::string module_name(std::string_view path_or_name) {
  std::string_view s = path_or_name.substr(path_or_name.rfind('/') + 1);
  if (s.ends_with(':')) {
    s.remove_suffix(1);  // modules.dep: "path.ko: deps..."
  }
  for (std::string_view ext : {".ko.zst", ".ko.xz", ".ko.gz", ".ko"}) {
    if (s.ends_with(ext)) {
      s.remove_suffix(ext.size());
      break;
    }
  }
  std::string out(s);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

std::vector<std::string> modules_in_listing(std::string_view listing) {
  std::vector<std::string> out;
  for (const std::string& line : split_lines(listing)) {
    std::vector<std::string> words = detail::split_words(line);
    if (words.empty()) {
      continue;
    }
    const std::string& path = words.back();
    bool ko = path.ends_with(".ko") || path.ends_with(".ko.xz") || path.ends_with(".ko.zst") || path.ends_with(".ko.gz");
    if (ko) {
      out.push_back(module_name(path));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> modules_in_index(std::string_view text) {
  std::vector<std::string> out;
  for (const std::string& line : split_lines(text)) {
    std::vector<std::string> words = detail::split_words(line);
    if (!words.empty() && words[0].front() != '#') {
      out.push_back(module_name(words[0]));
    }
  }
  return out;
}

std::string initramfs_tools_policy(const std::vector<std::string>& conf_texts) {
  std::string policy = "most";  // initramfs-tools' default
  for (const std::string& text : conf_texts) {
    for (const std::string& line : split_lines(text)) {
      std::string_view t = detail::trim(line);
      if (t.starts_with("MODULES=")) {
        std::string v(t.substr(8));
        std::erase(v, '"');
        std::erase(v, '\'');
        policy = v;
      }
    }
  }
  return policy;
}

namespace {

using Names = std::set<std::string>;

struct KernelModules {
  Names builtin;    // modules.builtin
  Names available;  // modules.dep: loadable modules
};

Result<KernelModules> kernel_modules(Target& t, const std::string& kver) {
  KernelModules km;
  for (const char* base : {"/lib/modules/", "/usr/lib/modules/"}) {
    std::string dir = base + kver;
    if (!UTSUSHI_TRY(t.session().is_dir(dir))) {
      continue;
    }
    if (auto text = UTSUSHI_TRY(t.read(dir + "/modules.builtin"))) {
      for (std::string& m : modules_in_index(*text)) {
        km.builtin.insert(std::move(m));
      }
    }
    if (auto text = UTSUSHI_TRY(t.read(dir + "/modules.dep"))) {
      for (std::string& m : modules_in_index(*text)) {
        km.available.insert(std::move(m));
      }
    }
    break;
  }
  return km;
}

std::string list_names(const Names& names) { return fmt::format("{}", fmt::join(names, " ")); }

Names minus(const Names& a, const Names& b) {
  Names out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

Names intersect(const Names& a, const Names& b) {
  Names out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

// initramfs-tools' configuration texts: initramfs.conf, then conf.d in order.
Result<std::vector<std::string>> initramfs_tools_confs(Target& t) {
  std::vector<std::string> confs;
  if (auto c = UTSUSHI_TRY(t.read("/etc/initramfs-tools/initramfs.conf"))) {
    confs.push_back(*c);
  }
  for (const std::string& f : UTSUSHI_TRY(t.session().glob("/etc/initramfs-tools/conf.d/*"))) {
    if (auto c = UTSUSHI_TRY(t.read(f))) {
      confs.push_back(*c);
    }
  }
  return confs;
}

// Guest files an initramfs copies or is built from (its configuration, udev's
// rules and .link files that name NICs, module options, what mounts the root):
// a change to any of them needs a rebuild.
constexpr std::array<std::string_view, 11> k_embedded = {
    "/etc/initramfs-tools/", "/etc/dracut.conf", "/etc/systemd/network/", "/etc/udev/", "/etc/modprobe.d/",
    "/etc/modules",          "/etc/crypttab",    "/etc/fstab",            "/etc/mdadm/", "/etc/lvm/",
    "/etc/default/",
};

// One kernel's part of the job.
struct KernelJob {
  std::string kver;
  KernelModules modules;
  Names needed;  // drivers asked for that are loadable modules of this kernel
  std::string image;
  bool image_exists = false;
  Names had;     // modules of the current initramfs
};

class Initramfs final : public Operation {
 public:
  explicit Initramfs(InitramfsParams params) : m_params(std::move(params)) {}
  std::string_view name() const override { return "initramfs"; }
  std::string_view description() const override {
    return "Rebuild each kernel's initramfs with the guest's own tool, adding the new hardware's drivers and "
           "keeping those it had; check the result";
  }
  Applicability applies(const GuestOs&) const override { return {}; }

  Result<void> run(Target& t) const override {
    const GuestOs& os = t.os();
    const bool itools = os.initramfs == InitramfsTool::initramfs_tools;
    if (!itools && os.initramfs != InitramfsTool::dracut) {
      return fail(Errc::not_supported,
                  fmt::format("the guest has no initramfs-tools or dracut ({}): its initramfs cannot be given the "
                              "drivers {}",
                              initramfs_tool_name(os.initramfs), fmt::join(m_params.add_drivers, " ")));
    }
    if (os.kernels.empty()) {
      return fail(Errc::not_supported, "no kernel found in the guest's /boot");
    }
    std::vector<KernelJob> jobs;
    for (const std::string& kver : os.kernels) {
      std::optional<KernelJob> job = UTSUSHI_TRY(plan_kernel(t, kver, kver == os.kernels.back(), itools));
      if (job) {
        jobs.push_back(std::move(*job));
      }
    }
    // initramfs-tools' module policy before this run changes it.
    const std::string policy = itools ? initramfs_tools_policy(UTSUSHI_TRY(initramfs_tools_confs(t))) : "";
    UTSUSHI_TRY(write_config(t, itools, policy, jobs));
    for (const KernelJob& job : jobs) {
      UTSUSHI_TRY(rebuild(t, itools, policy, job));
    }
    return {};
  }

 private:
  Result<std::optional<KernelJob>> plan_kernel(Target& t, const std::string& kver, bool newest, bool itools) const {
    KernelJob job;
    job.kver = kver;
    job.modules = UTSUSHI_TRY(kernel_modules(t, kver));
    Names lacking;
    for (const std::string& d : m_params.add_drivers) {
      std::string m = module_name(d);
      if (job.modules.available.contains(m)) {
        job.needed.insert(m);
      } else if (!job.modules.builtin.contains(m)) {
        lacking.insert(m);
      }
    }
    if (!lacking.empty()) {
      std::string why = fmt::format("kernel {} has no {} driver", kver, list_names(lacking));
      if (newest) {
        return fail(Errc::not_supported, why + ": it cannot boot on the new hardware");
      }
      t.note("/boot/vmlinuz-" + kver, why + ": its initramfs is left as it is; boot the newest kernel");
      return std::optional<KernelJob>();
    }
    job.image = UTSUSHI_TRY(image_path(t, kver, itools));
    job.image_exists = UTSUSHI_TRY(t.session().exists(job.image));
    if (job.image_exists) {
      job.had = UTSUSHI_TRY(list_modules(t, itools, job.image));
    }
    return std::optional<KernelJob>(std::move(job));
  }

  static Result<std::string> image_path(Target& t, const std::string& kver, bool itools) {
    std::string debian = "/boot/initrd.img-" + kver, redhat = "/boot/initramfs-" + kver + ".img";
    if (itools || UTSUSHI_TRY(t.session().exists(debian))) {
      return debian;
    }
    if (UTSUSHI_TRY(t.session().exists(redhat))) {
      return redhat;
    }
    return t.os().package_format == "deb" ? debian : redhat;
  }

  static Result<Names> list_modules(Target& t, bool itools, const std::string& image) {
    std::vector<std::string> argv{itools ? "lsinitramfs" : "lsinitrd", image};
    CommandResult r = UTSUSHI_TRY(t.session().run(argv));
    if (!r.ok()) {
      return fail(Errc::io_error, fmt::format("cannot list {} to check it ({} exit {}): {}", image, argv[0],
                                              r.exit_code, detail::output_tail(r.output)));
    }
    std::vector<std::string> mods = modules_in_listing(r.output);
    return Names(mods.begin(), mods.end());
  }

  // The persistent configuration, so later kernel updates keep the drivers.
  Result<void> write_config(Target& t, bool itools, const std::string& policy, const std::vector<KernelJob>& jobs) const {
    if (jobs.empty()) {
      return {};
    }
    if (itools && m_params.generic && policy == "most") {
      return {};  // generic already: every image it makes, later kernels' too, holds every storage driver
    }
    Names drivers = jobs.back().needed;
    if (!itools) {
      std::string conf = "# Written by utsushi: drivers of the hardware this guest was moved to.\n";
      if (!drivers.empty()) {
        conf += fmt::format("add_drivers+=\" {} \"\n", list_names(drivers));
      }
      if (m_params.generic) {
        conf += "hostonly=\"no\"\n";
      }
      UTSUSHI_TRY(t.write("/etc/dracut.conf.d/90-utsushi.conf", conf, "dracut: drivers for the new hardware"));
      return {};
    }
    Names keep;
    if (policy == "dep" || (m_params.generic && policy != "most")) {
      // MODULES=dep chooses drivers from the hardware it runs on (here: the
      // conversion appliance), so the drivers the guest had are named; a
      // generic image (MODULES=most) lacks some a dep image had (evdev,
      // serio_raw), and rebuild() requires every one it had. An image that
      // is generic already keeps them without a list.
      for (const KernelJob& job : jobs) {
        keep.merge(intersect(job.had, job.modules.available));
      }
    }
    const std::string path = "/etc/initramfs-tools/modules";
    std::string text = UTSUSHI_TRY(t.read(path)).value_or("");
    Names listed;
    for (const std::string& line : split_lines(text)) {
      std::vector<std::string> w = detail::split_words(line);
      if (!w.empty() && w[0].front() != '#') {
        listed.insert(module_name(w[0]));
      }
    }
    Names add_new = minus(drivers, listed), add_keep = minus(minus(keep, drivers), listed);
    if (!text.empty() && text.back() != '\n') {
      text += '\n';
    }
    if (!add_new.empty()) {
      text += "# Added by utsushi: drivers of the hardware this guest was moved to.\n";
      for (const std::string& m : add_new) {
        text += m + "\n";
      }
    }
    if (!add_keep.empty()) {
      text += "# Added by utsushi: drivers the initramfs had before (MODULES=dep would drop them).\n";
      for (const std::string& m : add_keep) {
        text += m + "\n";
      }
    }
    if (!add_new.empty() || !add_keep.empty()) {
      UTSUSHI_TRY(t.write(path, text, fmt::format("initramfs-tools modules: added {}", list_names(add_new))));
    }
    if (m_params.generic) {
      UTSUSHI_TRY(t.write("/etc/initramfs-tools/conf.d/zz-utsushi-generic.conf",
                          "# Written by utsushi: a generic initramfs, for hardware not known in advance.\nMODULES=most\n",
                          "initramfs-tools: MODULES=most"));
    }
    return {};
  }

  Result<void> rebuild(Target& t, bool itools, const std::string& policy, const KernelJob& job) const {
    Names keep = intersect(job.had, job.modules.available);
    const bool holds_needed = job.image_exists && minus(job.needed, job.had).empty();
    if (holds_needed && !m_params.generic) {
      // A generic initramfs (Debian's MODULES=most) has them already: rebuilding
      // (minutes under TCG) would change nothing the new hardware needs.
      t.check(job.image, fmt::format("already holds {}; not rebuilt", list_names(job.needed)));
      return {};
    }
    if (holds_needed && itools && policy == "most" && !t.changed_files_under(k_embedded)) {
      // Generic already (an image prepared before, restored again): a rebuild
      // (~6 min under TCG) would make the same image.
      t.check(job.image, fmt::format("generic already (MODULES=most, {} modules, including {}) and nothing it is "
                                     "built from changed; not rebuilt",
                                     job.had.size(), list_names(job.needed)));
      return {};
    }
    std::vector<std::string> argv;
    if (itools) {
      argv = {"update-initramfs", job.image_exists ? "-u" : "-c", "-k", job.kver};
    } else {
      argv = {"dracut", "--force"};
      if (m_params.generic) {
        argv.emplace_back("--no-hostonly");
      }
      if (!keep.empty()) {
        argv.insert(argv.end(), {"--add-drivers", list_names(keep)});
      }
      argv.insert(argv.end(), {job.image, job.kver});
    }
    std::string what = fmt::format("rebuild the initramfs of {} with {} (keeping the {} modules it had)", job.kver,
                                   list_names(job.needed), job.had.size());
    std::optional<CommandResult> r = UTSUSHI_TRY(t.run(argv, what));
    if (!r) {
      return {};  // dry run
    }
    if (!r->ok()) {
      return fail(Errc::io_error, fmt::format("the guest's {} failed for kernel {} (exit {}): {}", argv[0], job.kver,
                                              r->exit_code, detail::output_tail(r->output)));
    }
    Names now = UTSUSHI_TRY(list_modules(t, itools, job.image));
    Names required = job.needed;
    required.merge(Names(keep));
    Names missing = minus(required, now);
    if (!missing.empty()) {
      return fail(Errc::io_error, fmt::format("the new initramfs {} lacks {}: the guest would not boot; the old "
                                              "initramfs had {} modules",
                                              job.image, list_names(missing), job.had.size()));
    }
    t.check(job.image, fmt::format("{} modules, including {}; all {} it had are kept", now.size(),
                                   list_names(job.needed), keep.size()));
    return {};
  }

  InitramfsParams m_params;
};

}  // namespace

std::unique_ptr<Operation> make_initramfs_op(InitramfsParams params) {
  return std::make_unique<Initramfs>(std::move(params));
}

}  // namespace utsushi::guest
