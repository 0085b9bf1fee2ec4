#pragma once
// Which parts of a source a writer must read: the source's data extents in
// units of the output's allocation size (qcow2 clusters, VMDK grains),
// adjacent and overlapping ones merged, cut into jobs of at most `per_run`
// units for the worker pool. Internal to imagefmt.

#include <cstdint>
#include <vector>

#include "utsushi/imagefmt/block_device.h"

namespace utsushi::imagefmt {

struct DataRun {
  std::uint64_t first = 0;  // unit index
  std::uint64_t count = 0;  // units, 1..per_run
};

// `unit_bytes` > 0 and `per_run` > 0. Runs are in ascending order and never
// overlap; a unit that holds any data byte is in exactly one run.
[[nodiscard]] Result<std::vector<DataRun>> plan_data_runs(BlockDevice& source, std::uint64_t unit_bytes,
                                                          std::uint64_t per_run);

}  // namespace utsushi::imagefmt
