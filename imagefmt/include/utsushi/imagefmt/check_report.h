#pragma once
// What `utsushi-img check` reports for any format that has a check (qcow2:
// qemu-img check's counts; OVA: manifest digests and the disk's grains).

#include <cstdint>
#include <string>
#include <vector>

namespace utsushi::imagefmt {

struct CheckReport {
  std::uint64_t corruptions = 0;
  std::uint64_t leaks = 0;
  std::uint64_t check_errors = 0;        // structures that could not be read (the check is incomplete)
  std::uint64_t image_end_offset = 0;
  std::uint64_t total_clusters = 0;      // guest clusters (qcow2)
  std::uint64_t allocated_clusters = 0;  // guest clusters with data or compressed (qcow2)
  std::uint64_t compressed_clusters = 0;
  std::vector<std::string> messages;  // one line each ("ERROR cluster 5 refcount=0 reference=1")
};

}  // namespace utsushi::imagefmt
