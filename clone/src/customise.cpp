#include "utsushi/clone/customise.h"

#include <fmt/core.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "utsushi/common/log.h"
#include "utsushi/guest/inspect.h"

namespace utsushi::clone {
namespace {

struct Inspected {
  guest::GuestOs os;
  guest::MountLayout layout;
};

using SharedInspection = std::shared_future<Result<Inspected>>;

// The golden alone, read-only, in an appliance of its own.
Result<Inspected> inspect_golden(const SameGuest& same) {
  guest::SessionOptions so;
  so.identifier = "clone-inspect";
  guest::Session s = UTSUSHI_TRY(guest::Session::create(so));
  for (const guest::DiskSpec& d : same.golden) {
    UTSUSHI_TRY(s.add_disk({d.path, d.format, guest::DiskAccess::read_only}));
  }
  UTSUSHI_TRY(s.launch());
  Inspected r;
  r.os = UTSUSHI_TRY_CTX(guest::inspect(s), "the golden");
  UTSUSHI_TRY(guest::mount_guest(s, r.os, guest::MountMode::read_only));
  UTSUSHI_TRY(guest::probe_guest(s, r.os));
  r.layout = UTSUSHI_TRY(guest::layout_of(s, r.os, 0));
  return r;
}

// Jobs [first, last) of one launch.
struct Batch {
  std::size_t first = 0, last = 0;
};

std::vector<Batch> batches_of(std::span<const CustomiseJob> jobs, std::size_t max_disks) {
  std::vector<Batch> out;
  std::size_t disks = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (out.empty() || disks + jobs[i].disks.size() > max_disks) {
      out.push_back({i, i});
      disks = 0;
    }
    out.back().last = i + 1;
    disks += jobs[i].disks.size();
  }
  return out;
}

class Runner {
 public:
  Runner(std::span<const CustomiseJob> jobs, const CustomiseOptions& options, SharedInspection inspection)
      : m_jobs(jobs), m_options(options), m_inspection(std::move(inspection)), m_reports(jobs.size()) {}

  Result<void> run_batch(const Batch& b) {
    std::size_t disks = 0;
    for (std::size_t i = b.first; i < b.last; ++i) {
      disks += m_jobs[i].disks.size();
    }
    stage(fmt::format("launching an appliance for {} ({} disk{})", span_name(b), disks, disks == 1 ? "" : "s"));
    guest::SessionOptions so;
    so.identifier = "clone";
    guest::Session s = UTSUSHI_TRY(guest::Session::create(so));
    for (std::size_t i = b.first; i < b.last; ++i) {
      for (const guest::DiskSpec& d : m_jobs[i].disks) {
        // A plan writes nothing: its disks are read-only (libguestfs keeps the
        // mount's own writes in a throw-away overlay).
        UTSUSHI_TRY(s.add_disk({d.path, d.format,
                                m_options.mode == guest::Mode::apply ? guest::DiskAccess::writable
                                                                     : guest::DiskAccess::read_only}));
      }
    }
    UTSUSHI_TRY(s.launch());
    const Inspected* same = nullptr;
    if (m_inspection.valid()) {
      const Result<Inspected>& r = m_inspection.get();
      if (!r) {
        return std::unexpected(r.error());
      }
      same = &*r;
    }
    std::size_t first_disk = 0;
    for (std::size_t i = b.first; i < b.last && !m_failed; ++i) {
      const CustomiseJob& job = m_jobs[i];
      guest::Report report = UTSUSHI_TRY_CTX(run_job(s, job, first_disk, same), job.name);
      first_disk += job.disks.size();
      if (report.error) {
        return std::unexpected(Error(*report.error).with_context(job.name));
      }
      done(i, std::move(report));
    }
    stage(fmt::format("writing back {}", span_name(b)));
    UTSUSHI_TRY(s.shutdown());
    return {};
  }

  void fail_with(Error e) {
    std::lock_guard lock(m_mutex);
    if (!m_error) {
      m_error = std::move(e);
    }
    m_failed = true;
  }
  bool failed() const { return m_failed; }
  std::optional<Error> error() const { return m_error; }
  std::vector<guest::Report> take_reports() { return std::move(m_reports); }

 private:
  std::string span_name(const Batch& b) const {
    return b.last - b.first == 1 ? m_jobs[b.first].name
                                 : fmt::format("{} .. {}", m_jobs[b.first].name, m_jobs[b.last - 1].name);
  }

  Result<guest::Report> run_job(guest::Session& s, const CustomiseJob& job, std::size_t first_disk,
                                const Inspected* same) {
    guest::GuestOs os;
    if (same != nullptr) {
      UTSUSHI_TRY(guest::mount_layout(s, same->layout, first_disk, job.disks.size(), guest::MountMode::read_write));
      os = same->os;
    } else {
      os = UTSUSHI_TRY(guest::inspect(s, {.root_disk = first_disk}));
      UTSUSHI_TRY(guest::mount_guest(s, os, guest::MountMode::read_write));
      UTSUSHI_TRY(guest::probe_guest(s, os));
    }
    guest::IdentityParams params = job.params;
    if (m_options.prepare) {
      UTSUSHI_TRY(m_options.prepare(static_cast<std::size_t>(&job - m_jobs.data()), params));
    }
    guest::OperationList ops = guest::identity_operations(params);
    std::vector<const guest::Operation*> selected = UTSUSHI_TRY(guest::select_operations(ops, m_options.operations));
    guest::Report report = guest::run_operations(s, os, selected, m_options.mode);
    UTSUSHI_TRY(s.umount_all());
    if (m_first_os.type.empty()) {
      std::lock_guard lock(m_mutex);
      m_first_os = os;
    }
    return report;
  }

  void stage(const std::string& what) {
    if (!m_options.on_stage) {
      UTSUSHI_LOG_INFO("{}", what);
    } else {
      std::lock_guard lock(m_mutex);
      m_options.on_stage(what);
    }
  }

  void done(std::size_t i, guest::Report report) {
    std::lock_guard lock(m_mutex);
    if (m_options.on_guest) {
      m_options.on_guest(i, report);
    }
    m_reports[i] = std::move(report);
  }

 public:
  guest::GuestOs m_first_os;

 private:
  std::span<const CustomiseJob> m_jobs;
  const CustomiseOptions& m_options;
  SharedInspection m_inspection;
  std::vector<guest::Report> m_reports;
  std::mutex m_mutex;
  std::atomic<bool> m_failed{false};
  std::optional<Error> m_error;
};

}  // namespace

Result<std::vector<std::string>> selected_operations(const std::string& spec) {
  guest::OperationList ops = guest::identity_operations({});
  std::vector<std::string> names;
  for (const guest::Operation* op : UTSUSHI_TRY(guest::select_operations(ops, spec))) {
    names.emplace_back(op->name());
  }
  return names;
}

Result<CustomiseResult> customise(std::span<const CustomiseJob> jobs, const CustomiseOptions& options) {
  UTSUSHI_TRY(selected_operations(options.operations));
  CustomiseResult result;
  if (jobs.empty()) {
    return result;
  }
  SharedInspection inspection;
  if (options.same) {
    inspection = std::async(std::launch::async, [same = *options.same] { return inspect_golden(same); }).share();
  }
  std::size_t max_disks = options.max_disks == 0 ? k_default_max_disks : options.max_disks;
  std::vector<Batch> batches = batches_of(jobs, max_disks);
  Runner runner(jobs, options, inspection);
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < batches.size() && !runner.failed(); i = next++) {
      if (auto r = runner.run_batch(batches[i]); !r) {
        runner.fail_with(std::move(r).error());
      }
    }
  };
  unsigned parallel = std::max(1u, std::min<unsigned>(options.parallel, static_cast<unsigned>(batches.size())));
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < parallel; ++t) {
    threads.emplace_back(worker);
  }
  worker();
  for (std::thread& t : threads) {
    t.join();
  }
  if (inspection.valid()) {
    inspection.wait();  // its appliance is shut down before returning
  }
  if (auto e = runner.error()) {
    return std::unexpected(std::move(*e));
  }
  if (inspection.valid()) {
    result.os = inspection.get().value().os;
  } else {
    result.os = runner.m_first_os;
  }
  result.reports = runner.take_reports();
  return result;
}

}  // namespace utsushi::clone
