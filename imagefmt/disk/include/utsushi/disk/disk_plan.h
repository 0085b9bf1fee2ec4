#pragma once
// The capture plan of one disk: its partition table and every volume's
// used-block map, combined into the set of disk ranges a capture copies.

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "utsushi/imagefmt/block_device.h"
#include "utsushi/disk/fs_map.h"
#include "utsushi/disk/partition_table.h"

namespace utsushi::disk {

struct DiskPlan {
  std::string source;
  std::uint64_t size = 0;
  PartitionTable table;
  std::vector<VolumeMap> volumes;  // one per partition (or one for the whole disk)
  ByteRanges used;                 // disk offsets: table metadata + every volume's map
  std::vector<std::string> warnings;

  std::uint64_t used_bytes() const { return used.total(); }
};

// Reads the table and maps every volume. Damaged or unknown filesystems are
// planned as full copies (with warnings); a corrupt partition table or a
// partition beyond the end of the disk is an error (Errc::corruption). An MBR
// extended-partition container is not a volume (its EBRs are metadata).
[[nodiscard]] Result<DiskPlan> plan_disk(imagefmt::BlockDevice& disk, const std::string& source);

// A JSON description of the plan (for --json output and the hardware profile).
nlohmann::json plan_to_json(const DiskPlan& plan);

}  // namespace utsushi::disk
