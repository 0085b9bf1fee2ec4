#include "data_runs.h"

#include <algorithm>

namespace utsushi::imagefmt {

Result<std::vector<DataRun>> plan_data_runs(BlockDevice& source, std::uint64_t unit_bytes, std::uint64_t per_run) {
  std::vector<DataRun> runs;
  std::uint64_t run_first = 0, run_end = 0;
  auto emit = [&] {
    for (std::uint64_t u = run_first; u < run_end; u += per_run) {
      runs.push_back({u, std::min(per_run, run_end - u)});
    }
  };
  for (const Extent& e : UTSUSHI_TRY(source.extents())) {
    if (e.type != ExtentType::data) {
      continue;
    }
    std::uint64_t first = e.offset / unit_bytes;
    std::uint64_t end = (e.offset + e.length + unit_bytes - 1) / unit_bytes;
    if (run_end > run_first && first <= run_end) {
      run_end = std::max(run_end, end);
      continue;
    }
    emit();
    run_first = first;
    run_end = end;
  }
  emit();
  return runs;
}

}  // namespace utsushi::imagefmt
