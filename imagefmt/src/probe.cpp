#include "utsushi/imagefmt/probe.h"

#include <cstring>
#include <string_view>

#include "utsushi/common/endian.h"

namespace utsushi::imagefmt {
namespace {

// qcow2: "QFI\xfb" then version 2 or 3 (docs/interop/qcow2.txt).
int score_qcow2(std::span<const std::uint8_t> h) {
  if (!has_bytes_at(h, 0, "QFI\xfb") || h.size() < 8) {
    return 0;
  }
  std::uint32_t version = be32_at(h, 4);
  return version == 2 || version == 3 ? 100 : 50;
}

// VMDK: sparse extent header "KDMV" (little-endian 0x564d444b) or a text
// descriptor file (VMware Virtual Disk Format 1.1, section 3).
int score_vmdk(std::span<const std::uint8_t> h) {
  if (has_bytes_at(h, 0, "KDMV")) {
    return 100;
  }
  if (has_bytes_at(h, 0, "# Disk DescriptorFile")) {
    return 100;
  }
  return 0;
}

// OVA: a POSIX tar whose first member is the .ovf (DSP0243).
int score_ova(std::span<const std::uint8_t> h) {
  if (h.size() < 512 || !has_bytes_at(h, 257, "ustar")) {
    return 0;
  }
  std::string_view name(reinterpret_cast<const char*>(h.data()), strnlen(reinterpret_cast<const char*>(h.data()), 100));
  return name.ends_with(".ovf") ? 100 : 0;
}

// VDI: signature 0xbeda107f at 0x40 (VirtualBox VDICore.h).
int score_vdi(std::span<const std::uint8_t> h) {
  return h.size() >= 0x44 && le32_at(h, 0x40) == 0xbeda107fu ? 100 : 0;
}

}  // namespace

ProbeResult probe_format(std::span<const std::uint8_t> head, std::uint64_t /*file_size*/) {
  ProbeResult best{"raw", 1};
  auto consider = [&best](const char* name, int score) {
    if (score > best.score) {
      best = {name, score};
    }
  };
  consider("qcow2", score_qcow2(head));
  consider("vmdk", score_vmdk(head));
  consider("ova", score_ova(head));
  consider("vdi", score_vdi(head));
  consider("vhdx", has_bytes_at(head, 0, "vhdxfile") ? 100 : 0);
  consider("vhd", has_bytes_at(head, 0, "conectix") ? 100 : 0);  // dynamic VHD: footer copy at 0
  return best;
}

}  // namespace utsushi::imagefmt
