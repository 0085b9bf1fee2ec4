#pragma once
// v2p restore and plan: a guest image onto a bare-metal disk of any size.
//
// Steps, each recorded in the journal (journal.h) so a re-run resumes:
//  1. image: opened through imagefmt (qcow2 with its backing chain, raw,
//     VMDK, OVA) and checked (source_image.h), or read from `v2p serve` on
//     another host (remote_image.h: the server checked it); its partition
//     table and used-block maps read: a corrupt image is refused before
//     anything is written;
//  2. layout (layout_plan.h) for the target's size; a target that is too
//     small is refused naming the size it needs, before anything is written;
//  3. target checks (target.h), then a partition to shrink is staged and
//     shrunk (fs_resize.h), its exact minimum checked - still before the
//     target is written;
//  4. data: the restore view (restore_view.h) copied onto the target in
//     windows of 256 MiB by imagefmt's copy_device on every core: used blocks
//     written, the rest of each partition zeroed (it must never show an old
//     disk's data), space outside partitions discarded. The windows holding
//     the partition tables go last, so an interrupted target carries no table;
//  5. --verify: every data range re-read from the target and compared with
//     the view by XXH64;
//  6. filesystems grown, re-made or re-created (fs_resize.h);
//  7. boot preparation on the restored system (prepare.h), unless disabled.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "utsushi/common/progress.h"
#include "utsushi/disk/disk_plan.h"
#include "utsushi/disk/verify.h"
#include "utsushi/v2p/fs_resize.h"
#include "utsushi/v2p/layout_plan.h"
#include "utsushi/v2p/prepare.h"
#include "utsushi/v2p/remote_image.h"

namespace utsushi::v2p {

inline constexpr std::string_view k_default_state_dir = "/var/lib/utsushi/v2p";
inline constexpr std::uint64_t k_window = 256u << 20;

struct RestoreOptions {
  GrowChoice grow;
  PrepareOptions prepare;          // prepare.enabled = false: data and filesystems only
  bool force = false;              // overwrite a target that carries a partition table
  bool verify = false;
  std::optional<std::string> image_format;  // probed when empty
  std::optional<RemoteOptions> from;        // the image served by `v2p serve` there (the path is then ignored)
  std::string state_dir = std::string(k_default_state_dir);
  unsigned threads = 0;            // 0: one per core, at least 4
  ProgressFn progress;             // target bytes processed / target size
  ProgressFn verify_progress;
};

struct RestoreStats {
  std::uint64_t bytes_written = 0;    // data written to the target
  std::uint64_t bytes_zeroed = 0;     // made to read as zeros (inside partitions, zero chunks)
  std::uint64_t bytes_discarded = 0;  // discarded (outside partitions)
  std::uint64_t windows_resumed = 0;  // windows a previous run had finished
  std::uint64_t verified_bytes = 0;
};

struct RestoreResult {
  std::string image;
  std::string target;
  disk::DiskPlan image_plan;
  LayoutPlan layout;
  RestoreStats stats;
  bool resumed = false;
  std::vector<FsChange> filesystems;
  std::optional<guest::Report> preparation;
  double seconds = 0;
};

// Plans without writing (v2p plan): image checks and layout; the boot
// preparation planned as a dry run when `with_preparation` (one appliance
// launch over a throw-away overlay of the image).
struct PlanResult {
  std::string image;
  std::string target;
  disk::DiskPlan image_plan;
  LayoutPlan layout;
  std::string existing_table;  // what the target carries ("" when nothing)
  std::optional<guest::Report> preparation;
};
[[nodiscard]] Result<PlanResult> plan_restore(const std::string& image, const std::string& target,
                                              const RestoreOptions& options, bool with_preparation);

[[nodiscard]] Result<RestoreResult> restore(const std::string& image, const std::string& target,
                                            const RestoreOptions& options);

nlohmann::json layout_to_json(const LayoutPlan& layout);
nlohmann::json to_json(const RestoreResult& result);
nlohmann::json to_json(const PlanResult& result);

}  // namespace utsushi::v2p
