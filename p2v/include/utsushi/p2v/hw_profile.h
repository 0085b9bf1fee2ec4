#pragma once
// The hardware profile of the captured machine, written as JSON beside the
// images: the input of the later conversion step. When the sources are the
// running machine's own block devices, CPUs, memory, NICs (name, MAC,
// driver), disks and firmware come from /proc and /sys; for image files only
// what the disks themselves tell is recorded (sizes, partition tables, and a
// firmware guess: an EFI system partition on GPT means UEFI, MBR boot code
// means BIOS), with "source": "images".

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "utsushi/disk/disk_plan.h"

namespace utsushi::p2v {

// `images[i]` is the image captured from `plans[i]`.
nlohmann::json hardware_profile(const std::vector<disk::DiskPlan>& plans, const std::vector<std::string>& images);

// Writes the profile atomically.
Result<void> write_profile(const nlohmann::json& profile, const std::string& path);

// Whether `source` is a block device of this machine (so /proc and /sys describe its host).
bool is_local_block_device(const std::string& source);

}  // namespace utsushi::p2v
