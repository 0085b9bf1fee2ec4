#include "utsushi/v2p/restore.h"

#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "utsushi/common/cancel.h"
#include "utsushi/common/log.h"
#include "utsushi/disk/fs_map.h"
#include "utsushi/disk/used_blocks_filter.h"
#include "utsushi/imagefmt/copy.h"
#include "utsushi/imagefmt/filter.h"
#include "utsushi/imagefmt/raw.h"
#include "utsushi/v2p/journal.h"
#include "utsushi/v2p/remote_image.h"
#include "utsushi/v2p/restore_view.h"
#include "utsushi/v2p/source_image.h"
#include "utsushi/v2p/target.h"

namespace utsushi::v2p {
namespace {

namespace fs = std::filesystem;
using imagefmt::BlockDevice;

struct OpenedImage {
  std::unique_ptr<BlockDevice> device;
  disk::DiskPlan plan;
  std::unique_ptr<BlockDevice> used_view;
  std::string identity;
};

// The image named by `path`, or the one served at options.from.
[[nodiscard]] Result<OpenedImage> open_and_plan(const std::string& path, const RestoreOptions& options) {
  OpenedImage img;
  if (options.from) {
    RemoteImage remote = UTSUSHI_TRY(open_remote_image(*options.from));
    img.device = std::move(remote.device);
    img.identity = std::move(remote.identity);
  } else {
    SourceImage local = UTSUSHI_TRY(open_source_image(path, options.image_format));
    img.device = std::move(local.device);
    img.identity = std::move(local.identity);
  }
  img.plan = UTSUSHI_TRY(disk::plan_disk(*img.device, options.from ? img.device->description() : path));
  img.used_view = disk::make_used_view(*img.device, img.plan.used);
  return img;
}

std::string restore_key(const OpenedImage& img, const LayoutPlan& layout) {
  std::string used;
  for (const disk::ByteRange& r : img.plan.used.ranges()) {
    used += fmt::format("{}+{},", r.offset, r.length);
  }
  return digest(img.identity + "\n" + digest(used) + "\n" + layout_to_json(layout).dump());
}

// Windows in the order they are written: the first and the last (they hold
// the partition tables) after all others, so an interrupted target carries
// no table that looks complete.
std::vector<std::size_t> window_order(std::uint64_t size) {
  std::size_t n = static_cast<std::size_t>((size + k_window - 1) / k_window);
  std::vector<std::size_t> order;
  for (std::size_t i = 1; i + 1 < n; ++i) {
    order.push_back(i);
  }
  if (n > 1) {
    order.push_back(n - 1);
  }
  order.push_back(0);
  return order;
}

// Each window is flushed and then recorded in the journal on a second thread
// while the next window is copied, so the flush never stalls the copy.
[[nodiscard]] Result<void> write_data(BlockDevice& view, BlockDevice& target, Journal& journal,
                                      const RestoreOptions& options, RestoreStats& stats) {
  const std::uint64_t size = view.size();
  std::uint64_t done = 0;
  std::future<Result<void>> recording;
  auto wait_recording = [&]() -> Result<void> {
    return recording.valid() ? recording.get() : Result<void>{};
  };
  for (std::size_t i : window_order(size)) {
    const std::uint64_t off = i * k_window, len = std::min(k_window, size - off);
    if (journal.window_done(i)) {
      ++stats.windows_resumed;
      done += len;
      continue;
    }
    if (auto c = check_cancelled(); !c) {
      (void)wait_recording();
      return c;
    }
    BlockDevice vw(UTSUSHI_TRY(imagefmt::WindowFilter::create(view, off, len, view.description())));
    BlockDevice tw(UTSUSHI_TRY(imagefmt::WindowFilter::create(target, off, len, target.description())));
    imagefmt::CopyOptions c;
    c.target_is_zeroed = false;
    c.discard_holes = true;
    c.flush = false;
    c.threads = options.threads ? options.threads : std::max(4u, std::thread::hardware_concurrency());
    if (options.progress) {
      c.progress = [&](std::uint64_t d, std::uint64_t) { options.progress(done + d, size); };
    }
    auto copied = imagefmt::copy_device(vw, tw, c);
    UTSUSHI_TRY(wait_recording());
    imagefmt::CopyStats s = UTSUSHI_TRY(std::move(copied));
    stats.bytes_written += s.bytes_written;
    stats.bytes_discarded += s.bytes_discarded;
    stats.bytes_zeroed += s.bytes_zero - s.bytes_discarded;
    recording = std::async(std::launch::async, [&target, &journal, i]() -> Result<void> {
      UTSUSHI_TRY(target.flush());
      return journal.mark_window(i);
    });
    done += len;
  }
  UTSUSHI_TRY(wait_recording());
  if (options.progress) {
    options.progress(size, size);
  }
  return {};
}

[[nodiscard]] Result<disk::VerifyStats> verify_data(BlockDevice& view, BlockDevice& target, const RestoreOptions& options) {
  disk::ByteRanges data;
  for (const imagefmt::Extent& e : UTSUSHI_TRY(view.extents())) {
    if (e.type == imagefmt::ExtentType::data) {
      data.add(e.offset, e.length);
    }
  }
  return disk::verify_ranges(view, target, data, options.threads, options.verify_progress);
}

// A partition's staged copy (shrunk, or the source of an XFS re-created).
struct Staged {
  unsigned number = 0;
  std::string path;
  std::unique_ptr<BlockDevice> file;
  std::unique_ptr<BlockDevice> used_view;  // shrunk partitions: what the view copies
};

[[nodiscard]] Result<std::vector<Staged>> stage_partitions(OpenedImage& img, const LayoutPlan& layout, Journal& journal,
                                                           std::vector<FsChange>& changes) {
  std::vector<Staged> staged;
  for (const PartitionMove& m : layout.partitions) {
    if (m.action != FsAction::shrink && m.action != FsAction::recreate) {
      continue;
    }
    Staged s;
    s.number = m.number;
    s.path = journal.work_path(fmt::format("p{}.stage", m.number));
    const std::string step = fmt::format("staged-p{}", m.number);
    if (!journal.step_done(step) || !fs::exists(s.path)) {
      UTSUSHI_LOG_INFO("staging partition {} ({}) to {}", m.number, m.filesystem, fmt::format("{}", s.path));
      s.file = UTSUSHI_TRY(stage_partition(*img.used_view, m, s.path));
      if (m.action == FsAction::shrink) {
        s.file.reset();  // the tools write the file
        changes.push_back(UTSUSHI_TRY(shrink_staged(layout, m, s.path)));
      }
      UTSUSHI_TRY(journal.mark_step(step));
    } else if (m.action == FsAction::shrink) {
      changes.push_back({m.number, m.filesystem, m.action, m.src_length, m.dst_length, "shrunk by an earlier run"});
    }
    if (m.action == FsAction::shrink) {
      s.file = std::make_unique<BlockDevice>(UTSUSHI_TRY(imagefmt::open_raw(s.path)));
      disk::Volume v(*s.file, 0, m.dst_length, fmt::format("p{}", m.number));
      disk::VolumeMap map = UTSUSHI_TRY(disk::map_volume(v));
      s.used_view = disk::make_used_view(*s.file, map.used);
    }
    staged.push_back(std::move(s));
  }
  return staged;
}

std::string staged_path(const std::vector<Staged>& staged, unsigned number) {
  for (const Staged& s : staged) {
    if (s.number == number) {
      return s.path;
    }
  }
  return {};
}

[[nodiscard]] Result<void> refuse_existing_table(BlockDevice& target, const TargetInfo& info, bool force) {
  std::string table = UTSUSHI_TRY(existing_table(target));
  if (!table.empty() && !force) {
    return fail(Errc::failed_precondition,
                fmt::format("{} carries a {} partition table: --force to overwrite it", info.path, table));
  }
  return {};
}

}  // namespace

Result<PlanResult> plan_restore(const std::string& image, const std::string& target, const RestoreOptions& options,
                                bool with_preparation) {
  OpenedImage img = UTSUSHI_TRY(open_and_plan(image, options));
  TargetInfo info = UTSUSHI_TRY(describe_target(target));
  PlanResult r;
  r.image = options.from ? options.from->address : image;
  r.target = target;
  r.layout = UTSUSHI_TRY(plan_layout(img.plan, info.size, options.grow));
  {
    BlockDevice dev(UTSUSHI_TRY(imagefmt::open_raw(target)));
    r.existing_table = UTSUSHI_TRY(existing_table(dev));
  }
  if (with_preparation && options.prepare.enabled) {
    std::string format(img.device->format_name());
    if (options.from) {
      r.layout.notes.push_back("the boot preparation cannot be planned from a served image (libguestfs reads the "
                               "system only after the restore)");
    } else if (format == "ova") {
      r.layout.notes.push_back("the boot preparation cannot be planned from an OVA (libguestfs reads its disk only "
                               "after the restore)");
    } else {
      r.preparation = UTSUSHI_TRY(prepare_system({image, format, guest::DiskAccess::read_only}, options.prepare,
                                                 guest::Mode::plan));
    }
  }
  r.image_plan = std::move(img.plan);
  return r;
}

Result<RestoreResult> restore(const std::string& image, const std::string& target, const RestoreOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  OpenedImage img = UTSUSHI_TRY(open_and_plan(image, options));
  TargetInfo info = UTSUSHI_TRY(describe_target(target));
  UTSUSHI_TRY(check_target_free(info));
  RestoreResult r;
  r.image = options.from ? options.from->address : image;
  r.target = target;
  r.layout = UTSUSHI_TRY(plan_layout(img.plan, info.size, options.grow));
  if (std::string missing = missing_tools(r.layout); !missing.empty()) {
    return fail(Errc::failed_precondition, "the filesystems of this restore need tools this system lacks: " + missing);
  }
  Journal journal = UTSUSHI_TRY(Journal::open(options.state_dir, info.identity, restore_key(img, r.layout)));
  r.resumed = journal.resumed();
  auto dev = UTSUSHI_TRY(open_target(info));
  if (!journal.resumed()) {
    UTSUSHI_TRY(refuse_existing_table(*dev, info, options.force));
  }
  std::vector<Staged> staged = UTSUSHI_TRY(stage_partitions(img, r.layout, journal, r.filesystems));
  ContentSources sources;
  sources.image = img.used_view.get();
  for (const Staged& s : staged) {
    if (s.used_view) {
      sources.staged.emplace_back(s.number, s.used_view.get());
    }
  }
  auto view = UTSUSHI_TRY(make_restore_view(r.layout, sources));
  if (!journal.step_done("data")) {
    UTSUSHI_TRY(write_data(*view, *dev, journal, options, r.stats));
    UTSUSHI_TRY(journal.mark_step("data"));
  }
  if (options.verify) {
    r.stats.verified_bytes = UTSUSHI_TRY(verify_data(*view, *dev, options)).bytes;
  }
  dev.reset();  // the tools and the appliance open the target themselves
  if (!journal.step_done("filesystems")) {
    for (const PartitionMove& m : r.layout.partitions) {
      if (m.action != FsAction::copy && m.action != FsAction::shrink) {
        UTSUSHI_TRY(check_cancelled());
        r.filesystems.push_back(UTSUSHI_TRY(finish_filesystem(target, m, staged_path(staged, m.number))));
      }
    }
    UTSUSHI_TRY(journal.mark_step("filesystems"));
  }
  if (options.prepare.enabled && !journal.step_done("prepared")) {
    guest::Report report = UTSUSHI_TRY(
        prepare_system({target, "raw", guest::DiskAccess::writable}, options.prepare, guest::Mode::apply));
    if (!report.ok()) {
      Error e = *report.error;
      return std::unexpected(std::move(e).with_context("boot preparation"));
    }
    r.preparation = std::move(report);
    UTSUSHI_TRY(journal.mark_step("prepared"));
  }
  staged.clear();
  UTSUSHI_TRY(journal.finish());
  r.image_plan = std::move(img.plan);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace utsushi::v2p
