#include "utsushi/virt/accel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "utsushi/common/fd.h"
#include "utsushi/common/log.h"
#include "utsushi/common/process.h"

namespace utsushi::virt {
namespace {

constexpr const char* k_cache_path = "/var/tmp/utsushi-accel-probe";
constexpr const char* k_qemu = "qemu-system-x86_64";

// The newest readable kernel image in /boot, or empty.
std::string find_kernel() {
  std::string best;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/boot", ec)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with("vmlinuz-") && ::access(entry.path().c_str(), R_OK) == 0 && entry.path().string() > best) {
      best = entry.path().string();
    }
  }
  return best;
}

// Identifies the inputs of a probe: kernel path and QEMU binary mtime, so an
// upgrade of either re-runs it.
std::string probe_key(const std::string& kernel) {
  struct stat st {};
  std::string qemu_id = "none";
  for (const char* dir : {"/usr/bin/", "/usr/local/bin/"}) {
    if (::stat((std::string(dir) + k_qemu).c_str(), &st) == 0) {
      qemu_id = std::to_string(st.st_mtime);
      break;
    }
  }
  return kernel + " " + qemu_id;
}

}  // namespace

std::string_view accel_name(Accel accel) noexcept { return accel == Accel::kvm ? "kvm" : "tcg"; }

Result<Accel> parse_accel(std::string_view name) {
  if (name == "kvm") {
    return Accel::kvm;
  }
  if (name == "tcg") {
    return Accel::tcg;
  }
  return fail(Errc::invalid_argument, "unknown accelerator '" + std::string(name) + "' (expected kvm or tcg)");
}

Result<bool> probe_kvm_runs_guests(int timeout_seconds) {
  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    return false;
  }
  return probe_guest_boots(Accel::kvm, timeout_seconds);
}

Result<bool> probe_guest_boots(Accel accel, int timeout_seconds) {
  std::string kernel = find_kernel();
  if (kernel.empty()) {
    return fail(Errc::not_found, "no readable kernel in /boot to probe KVM with");
  }
  if (!program_exists(k_qemu)) {
    return fail(Errc::not_found, std::string(k_qemu) + " is not installed");
  }
  // No initramfs and no disk: a working guest panics at "VFS: Unable to mount
  // root fs" in about a second; a hanging one prints nothing past early setup.
  ProcessOptions opts;
  opts.timeout = std::chrono::seconds(timeout_seconds);
  opts.stop_marker = "VFS: ";
  auto run = UTSUSHI_TRY(run_process({k_qemu, "-accel", std::string(accel_name(accel)), "-cpu", accel == Accel::kvm ? "host" : "max", "-m", "256", "-nodefaults",
                                      "-display", "none", "-no-reboot", "-serial", "stdio", "-kernel", kernel,
                                      "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent"},
                                     opts));
  return run.marker_seen;
}

Result<AccelChoice> choose_accel(std::optional<Accel> forced) {
  if (forced) {
    return AccelChoice{*forced, "chosen on the command line"};
  }
  if (const char* env = std::getenv("UTSUSHI_ACCEL"); env && *env) {
    Accel a = UTSUSHI_TRY_CTX(parse_accel(env), "UTSUSHI_ACCEL");
    return AccelChoice{a, "forced by UTSUSHI_ACCEL"};
  }
  std::string key = probe_key(find_kernel());
  {
    std::ifstream cache(k_cache_path);
    std::string cached_key, verdict;
    if (std::getline(cache, cached_key) && std::getline(cache, verdict) && cached_key == key) {
      if (verdict == "kvm") {
        return AccelChoice{Accel::kvm, "KVM booted a probe guest (cached)"};
      }
      return AccelChoice{Accel::tcg, "KVM did not boot a probe guest (cached): using TCG"};
    }
  }
  auto ok = probe_kvm_runs_guests();
  bool kvm = ok && *ok;
  if (!ok) {
    UTSUSHI_LOG_WARN("KVM probe failed: {}", ok.error().message());
  } else {
    std::ofstream cache(k_cache_path, std::ios::trunc);
    cache << key << "\n" << (kvm ? "kvm" : "tcg") << "\n";
  }
  if (kvm) {
    return AccelChoice{Accel::kvm, "KVM booted a probe guest"};
  }
  UTSUSHI_LOG_WARN("KVM does not run guests on this host; using TCG (slower). Set UTSUSHI_ACCEL=kvm to override.");
  return AccelChoice{Accel::tcg, "KVM did not boot a probe guest: using TCG"};
}

}  // namespace utsushi::virt
