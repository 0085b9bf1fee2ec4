#pragma once
// clone sysprep: the identity operations alone, in place, on the images of
// stopped guests (each image one guest), all in one appliance launch. Each
// image gets a new machine id and new SSH host keys made on this host, so
// its fingerprints are reported and Debian's sshd starts; operations are
// chosen with virt-sysprep's syntax.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/guest/change.h"

namespace utsushi::clone {

struct SysprepOptions {
  std::vector<std::string> images;
  std::string operations;            // "" = defaults
  bool dry_run = false;              // plan only: nothing is written
  bool firstboot_machine_id = false;
  std::size_t max_disks = 0;
};

struct SysprepResult {
  std::string image;
  std::string machine_id;
  std::map<std::string, std::string> host_keys;  // type -> fingerprint
  guest::Report report;
};

// Errc::not_supported for an image format the appliance cannot write (OVA);
// the errors of customise() otherwise.
[[nodiscard]] Result<std::vector<SysprepResult>> sysprep_images(
    const SysprepOptions& options, const std::function<void(const std::string& image, const std::string& what)>& on_image = {});

}  // namespace utsushi::clone
