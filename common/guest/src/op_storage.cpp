// stale-caches, device-names, absent-disks (see boot_ops.h).
#include "op_util.h"
#include "utsushi/guest/boot_ops.h"
#include "utsushi/guest/config_edit.h"
#include "utsushi/guest/device_names.h"

namespace utsushi::guest {
namespace {

using detail::edit_file;

class StaleCaches final : public Operation {
 public:
  std::string_view name() const override { return "stale-caches"; }
  std::string_view description() const override {
    return "Remove blkid caches and the LVM cache and devices file, which name the old disks";
  }
  Applicability applies(const GuestOs&) const override { return {}; }
  Result<void> run(Target& t) const override {
    for (const char* path :
         {"/etc/blkid.tab", "/etc/blkid/blkid.tab", "/etc/lvm/cache/.cache", "/etc/lvm/devices/system.devices"}) {
      UTSUSHI_TRY(t.remove(path, "stale: names devices of the old hardware"));
    }
    return {};
  }
};

class DeviceNames final : public Operation {
 public:
  std::string_view name() const override { return "device-names"; }
  std::string_view description() const override {
    return "Rewrite bus device paths (/dev/sdX, /dev/hdX, cciss, nvme) to UUID= in fstab, crypttab and RESUME";
  }
  Applicability applies(const GuestOs&) const override { return {}; }
  Result<void> run(Target& t) const override {
    const DeviceMap* map = UTSUSHI_TRY(t.devices());
    DeviceResolver resolve = [map](std::string_view d) { return map->stable_spec(d); };
    UTSUSHI_TRY(edit_file(t, "/etc/fstab", [&](const std::string& s) { return rewrite_fstab(s, resolve); }));
    UTSUSHI_TRY(edit_file(t, "/etc/crypttab", [&](const std::string& s) { return rewrite_crypttab(s, resolve); }));
    for (const char* path : {"/etc/initramfs-tools/conf.d/resume", "/etc/initramfs-tools/initramfs.conf",
                             "/etc/uswsusp.conf"}) {
      UTSUSHI_TRY(edit_file(t, path, [&](const std::string& s) { return rewrite_resume_conf(s, resolve); }));
    }
    return {};
  }
};

class AbsentDisks final : public Operation {
 public:
  std::string_view name() const override { return "absent-disks"; }
  std::string_view description() const override {
    return "Add nofail to fstab entries whose device is on no disk given, so boot does not stop for them";
  }
  Applicability applies(const GuestOs&) const override { return {}; }
  Result<void> run(Target& t) const override {
    const DeviceMap* map = UTSUSHI_TRY(t.devices());
    auto absent = [map](const FstabEntry& e) {
      return e.file != "/" && DeviceMap::names_a_block_device(e.spec) && map->find(e.spec) == nullptr &&
             e.options.find("noauto") == std::string::npos;
    };
    UTSUSHI_TRY(edit_file(t, "/etc/fstab", [&](const std::string& s) {
      Edited out = add_fstab_option(s, absent, "nofail");
      for (std::string& e : out.edits) {
        e += " (its device is on no disk given)";
      }
      return out;
    }));
    return {};
  }
};

}  // namespace

std::unique_ptr<Operation> make_stale_caches_op() { return std::make_unique<StaleCaches>(); }
std::unique_ptr<Operation> make_device_names_op() { return std::make_unique<DeviceNames>(); }
std::unique_ptr<Operation> make_absent_disks_op() { return std::make_unique<AbsentDisks>(); }

}  // namespace utsushi::guest
