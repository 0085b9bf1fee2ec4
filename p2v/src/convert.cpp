#include "utsushi/p2v/convert.h"

#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "utsushi/common/log.h"
#include "utsushi/guest/boot_ops.h"
#include "utsushi/guest/inspect.h"
#include "utsushi/guest/network_config.h"
#include "utsushi/guest/session.h"
#include "utsushi/guest/system_ops.h"
#include "utsushi/imagefmt/image_ops.h"
#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/registry.h"

namespace utsushi::p2v {
namespace {

namespace fs = std::filesystem;

struct Source {
  std::string path;
  std::string format;
};

Result<std::vector<Source>> probe_sources(const std::vector<std::string>& images) {
  std::vector<Source> out;
  for (const std::string& image : images) {
    std::error_code ec;
    if (!fs::exists(image, ec)) {
      return fail(Errc::not_found, image + ": no such image");
    }
    imagefmt::ProbeResult probe = UTSUSHI_TRY(imagefmt::probe_path(image));
    if (probe.format == "ova") {
      return fail(Errc::invalid_argument,
                  image + " is an OVA: give its disk (utsushi-img convert -O qcow2 " + image + " DISK.qcow2)");
    }
    if (probe.format != "raw" && probe.format != "qcow2" && probe.format != "vmdk") {
      return fail(Errc::not_supported, image + ": " + probe.format + " images are not supported (raw, qcow2, vmdk)");
    }
    out.push_back({fs::absolute(image).string(), probe.format});
  }
  return out;
}

std::string random_mac() {
  std::random_device rd;
  std::uniform_int_distribution<int> byte(0, 255);
  return fmt::format("52:54:00:{:02x}:{:02x}:{:02x}", byte(rd), byte(rd), byte(rd));
}

// "sda", "sdb", ... "sdaa": the names virt-v2v gives converted disks.
std::string disk_suffix(std::size_t i) {
  std::string letters;
  for (std::size_t n = i + 1; n > 0; n = (n - 1) / 26) {
    letters.insert(letters.begin(), static_cast<char>('a' + (n - 1) % 26));
  }
  return "sd" + letters;
}

std::string file_safe(std::string name) {
  for (char& c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-')) {
      c = '_';
    }
  }
  return name;
}

std::string choose_name(const ConvertOptions& o, const guest::GuestOs& os) {
  if (std::string known = name_before_inspection(o); !known.empty()) {
    return known;
  }
  if (!os.hostname.empty()) {
    return os.hostname;
  }
  return fs::path(o.images.front()).stem().string();
}

struct NicPlan {
  std::vector<VmNic> nics;
  std::vector<guest::NicBinding> bindings;
};

// One VM NIC per physical NIC of the profile, with its MAC; without profile
// NICs, one per interface name the guest's configuration binds, with a new MAC.
Result<NicPlan> plan_nics(const std::optional<virt::MachineProfile>& profile, const guest::GuestOs& os) {
  NicPlan plan;
  const bool known = profile && profile->nics && !profile->nics->empty();
  for (const virt::NicInfo& n : known ? *profile->nics : std::vector<virt::NicInfo>{}) {
    std::string mac = n.mac;
    if (!guest::normalise_mac(mac)) {
      return fail(Errc::invalid_argument, fmt::format("the profile's NIC {} has no valid MAC ('{}')", n.name, n.mac));
    }
    plan.nics.push_back({mac, n.name});
    if (!n.name.empty()) {
      plan.bindings.push_back({n.name, mac, ""});
    }
  }
  if (known) {
    return plan;
  }
  for (const guest::NetworkConfig& c : os.network) {
    for (const std::string& name : c.interfaces) {
      auto seen = std::find_if(plan.nics.begin(), plan.nics.end(), [&](const VmNic& v) { return v.guest_name == name; });
      if (seen == plan.nics.end()) {
        std::string mac = random_mac();
        plan.nics.push_back({mac, name});
        plan.bindings.push_back({name, mac, ""});
      }
    }
  }
  if (plan.nics.empty()) {
    plan.nics.push_back({random_mac(), ""});
  }
  return plan;
}

std::vector<std::string> drivers_for(virt::DiskBus bus, virt::NicModel nic) {
  std::vector<std::string> d{"virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net"};
  if (bus == virt::DiskBus::scsi) {
    d.emplace_back("sd_mod");
  } else if (bus == virt::DiskBus::sata) {
    d.insert(d.end(), {"ahci", "sd_mod"});
  }
  if (nic == virt::NicModel::e1000e) {
    d.emplace_back("e1000e");
  } else if (nic == virt::NicModel::e1000) {
    d.emplace_back("e1000");
  }
  return d;
}

guest::OperationList conversion_operations(const Conversion& c, std::vector<guest::NicBinding> bindings) {
  guest::OperationList ops;
  ops.push_back(guest::make_stale_caches_op());
  ops.push_back(guest::make_device_names_op());
  ops.push_back(guest::make_absent_disks_op());
  ops.push_back(guest::make_nic_names_op({std::move(bindings)}));  // before initramfs: .link files go in it
  ops.push_back(guest::make_hardware_services_op());
  ops.push_back(guest::make_serial_console_op({}));
  ops.push_back(guest::make_initramfs_op({drivers_for(c.bus, c.nic), false}));
  ops.push_back(guest::make_boot_loader_op({{"console=ttyS0,115200n8"}}));
  ops.push_back(guest::make_boot_fallback_op({c.firmware, false}));
  return ops;
}

// Adds the disks the conversion works on: new qcow2 images (pending in `c`),
// the captured images themselves (in place), or read-only (dry run).
Result<void> add_disks(guest::Session& session, const ConvertOptions& o, const std::vector<Source>& sources,
                       Conversion& c) {
  bool new_images = !o.dry_run && o.output != OutputMode::in_place;
  if (new_images) {
    std::error_code ec;
    fs::create_directories(o.output_dir, ec);
    if (ec) {
      return fail(Errc::io_error, "cannot create " + o.output_dir + ": " + ec.message());
    }
  }
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const Source& src = sources[i];
    if (!new_images) {
      auto access = o.dry_run ? guest::DiskAccess::read_only : guest::DiskAccess::writable;
      UTSUSHI_TRY(session.add_disk({src.path, src.format, access}));
      c.disks.push_back({src.path, src.path, src.format});
      continue;
    }
    std::string temp = (fs::path(o.output_dir) / fmt::format(".p2v-convert.{}.{}.qcow2.partial", ::getpid(), i)).string();
    c.pending.push_back({temp, ""});
    if (o.output == OutputMode::overlay) {
      UTSUSHI_TRY(imagefmt::create_qcow2_overlay(temp, src.path, src.format));
    } else {
      imagefmt::ConvertOptions copy;
      copy.input_format = src.format;
      copy.output_format = "qcow2";
      copy.threads = o.threads;
      copy.progress = o.progress;
      UTSUSHI_LOG_INFO("copying {} (used data only)", src.path);
      UTSUSHI_TRY(imagefmt::convert_image(src.path, temp, copy));
    }
    UTSUSHI_TRY(session.add_disk({temp, "qcow2", guest::DiskAccess::writable}));
    c.disks.push_back({src.path, temp, "qcow2"});
  }
  return {};
}

void name_outputs(const ConvertOptions& o, Conversion& c) {
  for (std::size_t i = 0; i < c.pending.size(); ++i) {
    c.pending[i].final_path =
        (fs::path(o.output_dir) / fmt::format("{}-{}.qcow2", file_safe(c.name), disk_suffix(i))).string();
    c.disks[i].path = c.pending[i].final_path;
  }
}

}  // namespace

std::string name_before_inspection(const ConvertOptions& o) {
  if (!o.name.empty()) {
    return o.name;
  }
  if (o.profile && !o.profile->hostname.empty()) {
    return o.profile->hostname;
  }
  return {};
}

Result<Conversion> convert(const ConvertOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.images.empty()) {
    return fail(Errc::invalid_argument, "no image given");
  }
  if (!o.dry_run && o.output != OutputMode::in_place && o.output_dir.empty()) {
    return fail(Errc::invalid_argument, "an output directory is required (--output-dir DIR, or --in-place)");
  }
  if (o.bus == virt::DiskBus::ide) {
    return fail(Errc::invalid_argument, "the disk bus must be virtio, scsi or sata");
  }
  std::vector<Source> sources = UTSUSHI_TRY(probe_sources(o.images));
  Conversion c;
  c.replace = o.replace_outputs;
  c.bus = o.bus;
  c.nic = o.nic;
  if (o.profile) {
    c.profile = *o.profile;
  }

  guest::SessionOptions so;
  so.identifier = "p2v-convert";
  so.progress = o.progress;
  guest::Session session = UTSUSHI_TRY(guest::Session::create(so));
  UTSUSHI_TRY(add_disks(session, o, sources, c));
  auto elapsed = [&t0] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  UTSUSHI_TRY(session.launch());
  UTSUSHI_LOG_INFO("appliance up after {:.1f} s", elapsed());
  c.os = UTSUSHI_TRY(guest::inspect(session));
  UTSUSHI_LOG_DEBUG("inspect_os done after {:.1f} s", elapsed());
  UTSUSHI_TRY(guest::mount_guest(session, c.os, o.dry_run ? guest::MountMode::read_only : guest::MountMode::read_write));
  UTSUSHI_LOG_DEBUG("mounted after {:.1f} s", elapsed());
  UTSUSHI_TRY(guest::probe_guest(session, c.os));
  UTSUSHI_LOG_INFO("guest inspected after {:.1f} s", elapsed());
  c.name = choose_name(o, c.os);
  name_outputs(o, c);
  for (const Conversion::Pending& p : c.pending) {
    std::error_code ec;
    if (!c.replace && fs::exists(p.final_path, ec)) {
      return fail(Errc::failed_precondition, p.final_path + " exists (give --replace to overwrite it)");
    }
  }
  c.firmware = o.firmware != guest::Firmware::unknown ? o.firmware
               : c.os.firmware == guest::Firmware::uefi ? guest::Firmware::uefi
                                                         : guest::Firmware::bios;
  NicPlan nics = UTSUSHI_TRY(plan_nics(o.profile, c.os));
  c.nics = nics.nics;
  // The domain gets exactly these NICs: from_profile() makes one per profile NIC, with its MAC.
  c.profile.nics = std::vector<virt::NicInfo>();
  for (const VmNic& n : c.nics) {
    virt::NicInfo info;
    info.name = n.guest_name;
    info.mac = n.mac;
    c.profile.nics->push_back(std::move(info));
  }
  c.profile.firmware = c.firmware == guest::Firmware::uefi ? virt::FirmwareKind::uefi : virt::FirmwareKind::bios;

  guest::OperationList ops = conversion_operations(c, std::move(nics.bindings));
  std::vector<const guest::Operation*> selected = guest::default_operations(ops);
  c.report = guest::run_operations(session, c.os, selected, o.dry_run ? guest::Mode::plan : guest::Mode::apply);
  if (!c.report.ok()) {
    return std::unexpected(*c.report.error);
  }
  UTSUSHI_TRY(session.umount_all());
  UTSUSHI_TRY(session.shutdown());
  c.seconds = elapsed();
  return c;
}

}  // namespace utsushi::p2v
