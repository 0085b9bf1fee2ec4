#pragma once
// The machine profile of the captured machine (virt::MachineProfile,
// machine_profile.h), written as JSON beside the images: the input of the
// later conversion step. When the sources are the running machine's own
// block devices, CPUs, memory, NICs (name, MAC, driver, configured
// addresses), disks and firmware come from /proc, /sys and the kernel's
// interface list; for image files only what the disks themselves tell is
// recorded (sizes, partition tables, and a firmware guess: an EFI system
// partition means UEFI, MBR boot code means BIOS), with source `images`.

#include <string>
#include <vector>

#include "utsushi/disk/disk_plan.h"
#include "utsushi/virt/machine_profile.h"

namespace utsushi::p2v {

// `images[i]` is the image captured from `plans[i]`.
virt::MachineProfile hardware_profile(const std::vector<disk::DiskPlan>& plans,
                                      const std::vector<std::string>& images);

// Writes the profile atomically.
using virt::write_profile;

// Whether `source` is a block device of this machine (so /proc and /sys describe its host).
bool is_local_block_device(const std::string& source);

}  // namespace utsushi::p2v
