#pragma once
// clone destroy: removes clones by name or shell pattern from their hosts,
// and nothing clone did not make.
//
// A name given exactly must be a domain clone made (its metadata says so),
// else the whole command is refused before anything is removed; a pattern
// (*, ?, [...]) selects only the domains clone made and leaves every other
// alone. Each clone is stopped, its volumes deleted, then its domain
// undefined (with its NVRAM): a clone killed midway keeps its domain, so a
// re-run finishes it. A golden volume that no remaining clone on the host
// uses is deleted last.

#include <functional>
#include <string>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi::clone {

struct DestroyOptions {
  std::vector<std::string> patterns;                // names or shell patterns
  std::vector<std::string> uris{"qemu:///system"};
  bool dry_run = false;                             // list what would go, remove nothing
};

struct DestroyedClone {
  std::string name;
  std::string uri;
  std::vector<std::string> volumes;  // paths of the volumes deleted
};

struct DestroyReport {
  std::vector<DestroyedClone> clones;
  std::vector<std::string> golden_volumes;  // "URI: path" of golden volumes deleted
  std::vector<std::string> left_alone;      // "URI: name" of matching domains clone did not make
};

// Errc::not_found when nothing matches; Errc::failed_precondition when a name
// given exactly is a domain clone did not make.
[[nodiscard]] Result<DestroyReport> destroy_clones(
    const DestroyOptions& options, const std::function<void(const std::string& clone, const std::string& what)>& on_clone = {});

}  // namespace utsushi::clone
