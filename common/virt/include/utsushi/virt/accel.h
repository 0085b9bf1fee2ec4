#pragma once
// Choosing QEMU's accelerator. /dev/kvm can exist and KVM_CREATE_VM succeed
// while guests still hang at boot (nested virtualisation gone wrong), so the
// probe boots the host's own kernel under KVM and waits for it to reach the
// root-mount stage; only then is KVM chosen. Otherwise TCG is chosen with a
// warning. The verdict is cached per (kernel, QEMU binary) in
// /var/tmp/utsushi-accel-probe. UTSUSHI_ACCEL=kvm|tcg, or an explicit choice
// passed by the caller (a CLI --accel option), skips the probe.

#include <optional>
#include <string>
#include <string_view>

#include "utsushi/common/error.h"

namespace utsushi::virt {

enum class Accel { kvm, tcg };

std::string_view accel_name(Accel accel) noexcept;
[[nodiscard]] Result<Accel> parse_accel(std::string_view name);

struct AccelChoice {
  Accel accel;
  std::string reason;  // why: "forced by UTSUSHI_ACCEL", "KVM booted a guest", ...
};

// The accelerator to use. `forced` (from a CLI option) wins, then the
// UTSUSHI_ACCEL environment variable, then the (cached) probe.
[[nodiscard]] Result<AccelChoice> choose_accel(std::optional<Accel> forced = std::nullopt);

// Boots the host's newest /boot/vmlinuz-* under `accel` with no disk and no
// initramfs; true when it reaches the root-mount stage ("VFS: ") within the
// timeout. With tcg this always works on a healthy host (~2 s).
[[nodiscard]] Result<bool> probe_guest_boots(Accel accel, int timeout_seconds);

// Runs the KVM probe now, ignoring the cache.
[[nodiscard]] Result<bool> probe_kvm_runs_guests(int timeout_seconds = 15);

}  // namespace utsushi::virt
