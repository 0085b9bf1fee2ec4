#include "utsushi/imagefmt/registry.h"

#include <fcntl.h>

#include <algorithm>
#include <vector>

#include "utsushi/imagefmt/probe.h"
#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/ova.h"
#include "utsushi/imagefmt/vmdk.h"

namespace utsushi::imagefmt {
namespace {

using OpenFn = Result<std::unique_ptr<BlockDriver>> (*)(const std::string& path, const OpenOptions& options,
                                                        bool probed);

struct FormatEntry {
  const char* name;
  const char* description;
  OpenFn open;  // nullptr: recognised by probing but not readable
};

Result<std::unique_ptr<BlockDriver>> open_raw_entry(const std::string& path, const OpenOptions& options,
                                                    bool probed) {
  return open_raw(path, RawOpenOptions{options.access, probed});
}

// Order does not matter; names are unique. Formats that other modules add
// (qcow2, vmdk, ova) get their open function here.
constexpr FormatEntry k_formats[] = {
    {"raw", "raw disk image or block device", open_raw_entry},
    {"qcow2", "QEMU copy-on-write v2/v3", open_qcow2},
    {"vmdk", "VMware virtual disk", open_vmdk},
    {"ova", "Open Virtualization Appliance (tar)", open_ova},
    {"vdi", "VirtualBox disk image", nullptr},
    {"vhd", "Microsoft Virtual Hard Disk", nullptr},
    {"vhdx", "Microsoft Virtual Hard Disk v2", nullptr},
};

}  // namespace

Result<ProbeResult> probe_path(const std::string& path) {
  Fd fd = UTSUSHI_TRY(open_input(path, O_RDONLY));
  std::vector<std::uint8_t> head(k_probe_bytes);
  std::size_t n = UTSUSHI_TRY(pread_some(fd.get(), head, 0, path));
  head.resize(n);
  auto size_driver = UTSUSHI_TRY(raw_from_fd(std::move(fd), path, Access::read_only));
  return probe_format(head, size_driver->size());
}

Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path, const OpenOptions& options) {
  std::string format;
  bool probed = false;
  if (options.format) {
    format = *options.format;
  } else {
    format = UTSUSHI_TRY(probe_path(path)).format;
    probed = true;
  }
  auto it = std::find_if(std::begin(k_formats), std::end(k_formats),
                         [&](const FormatEntry& e) { return format == e.name; });
  if (it == std::end(k_formats)) {
    return fail(Errc::invalid_argument, "unknown image format '" + format + "'");
  }
  if (it->open == nullptr) {
    return fail(Errc::not_supported, "'" + path + "' is a " + it->description + " (" + format +
                                         "), which this build of utsushi cannot read");
  }
  auto driver = UTSUSHI_TRY(it->open(path, options, probed));
  return std::make_unique<BlockDevice>(std::move(driver));
}

}  // namespace utsushi::imagefmt
