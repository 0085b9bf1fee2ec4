#pragma once
// Pure rewriting of the guest configuration that names devices and carries
// the kernel command line: fstab, crypttab, initramfs-tools' RESUME,
// /etc/default/grub, grub.cfg, BootLoaderSpec entries. Every function keeps
// comments, blank lines and untouched lines byte for byte, and lists its
// edits in words for the change report.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace utsushi::guest {

// A device name -> its replacement ("UUID=..."), or nullopt to keep it.
using DeviceResolver = std::function<std::optional<std::string>(std::string_view device)>;

struct Edited {
  std::string text;
  std::vector<std::string> edits;  // "/etc/fstab line 3: /dev/sda2 -> UUID=..." (without the file name)
  bool changed() const noexcept { return !edits.empty(); }
};

struct FstabEntry {
  std::size_t line = 0;  // 1-based
  std::string spec, file, vfstype, options;
};

// The entries of an fstab (comments and malformed lines skipped).
std::vector<FstabEntry> parse_fstab(std::string_view text);

// fstab: the first field of each entry resolved.
Edited rewrite_fstab(std::string_view text, const DeviceResolver& resolve);
// crypttab: the second field (the encrypted device) resolved.
Edited rewrite_crypttab(std::string_view text, const DeviceResolver& resolve);
// Adds `option` to the options of the entries `pick` selects (unless present).
Edited add_fstab_option(std::string_view text, const std::function<bool(const FstabEntry&)>& pick,
                        std::string_view option);

// A kernel command line: root= and resume= resolved; each of `add` appended
// unless an equivalent is there (same key and, for console=, the same device).
std::string rewrite_cmdline(std::string_view cmdline, const DeviceResolver& resolve,
                            const std::vector<std::string>& add, std::vector<std::string>& edits);

// /etc/default/grub: device names in GRUB_CMDLINE_LINUX and
// GRUB_CMDLINE_LINUX_DEFAULT resolved, `add` appended to GRUB_CMDLINE_LINUX
// (created when missing), GRUB_DISABLE_LINUX_UUID=true turned off.
Edited rewrite_default_grub(std::string_view text, const DeviceResolver& resolve, const std::vector<std::string>& add);
// grub.cfg edited in place (for guests without grub-mkconfig): the arguments
// of every linux/linux16/linuxefi/kernel line as rewrite_cmdline does.
Edited rewrite_grub_cfg(std::string_view text, const DeviceResolver& resolve, const std::vector<std::string>& add);
// A BootLoaderSpec entry (/boot/loader/entries/*.conf): its "options" line.
Edited rewrite_bls_entry(std::string_view text, const DeviceResolver& resolve, const std::vector<std::string>& add);
// initramfs-tools' conf.d/resume (RESUME=...).
Edited rewrite_resume_conf(std::string_view text, const DeviceResolver& resolve);

// The kernel arguments of every boot entry in a grub.cfg (for checks).
std::vector<std::string> grub_cfg_cmdlines(std::string_view text);
// The value of `key=` on a command line ("" when absent).
std::string cmdline_value(std::string_view cmdline, std::string_view key);

// Splits text into lines (without their '\n'); a final line without '\n' is kept.
std::vector<std::string> split_lines(std::string_view text);
// Joins lines with '\n', ending with '\n' when `final_newline`.
std::string join_lines(const std::vector<std::string>& lines, bool final_newline);

}  // namespace utsushi::guest
