// clone create (create.h): check, stage, customise, publish, start.
#include "utsushi/clone/create.h"

#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "plan.h"
#include "utsushi/clone/customise.h"
#include "utsushi/clone/secrets.h"
#include "utsushi/clone/staging.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/log.h"
#include "utsushi/disk/disk_plan.h"
#include "utsushi/disk/used_blocks_filter.h"
#include "utsushi/imagefmt/output.h"
#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/registry.h"

namespace utsushi::clone {
namespace {

namespace fs = std::filesystem;
using namespace detail;
using Clock = std::chrono::steady_clock;

// The host key types made for every clone: what ssh-keygen -A makes.
const std::vector<std::string> k_host_key_types{"rsa", "ecdsa", "ed25519"};

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail_errno(errno, path);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<std::vector<std::string>> read_public_keys(const std::vector<std::string>& files) {
  std::vector<std::string> keys;
  for (const std::string& f : files) {
    std::istringstream in(UTSUSHI_TRY(read_text(f)));
    std::size_t found = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line.front() == '#') {
        continue;
      }
      UTSUSHI_TRY_CTX(ssh_fingerprint(line), "--ssh-key " + f);
      keys.push_back(line);
      ++found;
    }
    if (found == 0) {
      return fail(Errc::invalid_argument, fmt::format("--ssh-key {}: no public key in it", f));
    }
  }
  return keys;
}

Result<std::vector<guest::Script>> read_scripts(const std::vector<std::string>& files) {
  std::vector<guest::Script> out;
  for (const std::string& f : files) {
    out.push_back({fs::path(f).filename().string(), UTSUSHI_TRY(read_text(f))});
  }
  return out;
}

class Phases {
 public:
  Phases(const CreateEvents& events, CreateReport& report) : m_events(events), m_report(report) {}
  void begin(const std::string& name, const std::string& what) {
    end();
    m_name = name;
    m_start = Clock::now();
    UTSUSHI_LOG_INFO("{}", what);
    if (m_events.on_phase) {
      m_events.on_phase(what);
    }
  }
  void end() {
    if (!m_name.empty()) {
      m_report.seconds[m_name] = std::chrono::duration<double>(Clock::now() - m_start).count();
      m_name.clear();
    }
  }

 private:
  const CreateEvents& m_events;
  CreateReport& m_report;
  std::string m_name;
  Clock::time_point m_start;
};

// Host keys for the clones, made on every core in the background.
class KeyMaker {
 public:
  explicit KeyMaker(const std::vector<std::string>& comments) : m_results(comments.size()) {
    unsigned workers = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned w = 0; w < workers; ++w) {
      m_threads.emplace_back([this, comments] {
        for (std::size_t i = m_next++; i < comments.size(); i = m_next++) {
          auto keys = generate_host_keys(k_host_key_types, comments[i]);
          std::lock_guard lock(m_mutex);
          m_results[i] = std::move(keys);
          m_cv.notify_all();
        }
      });
    }
  }
  ~KeyMaker() {
    m_next = m_results.size();  // no more work is started
    for (std::thread& t : m_threads) {
      t.join();
    }
  }
  // Waits for clone i's keys.
  Result<std::vector<GeneratedKey>> get(std::size_t i) {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_results[i].has_value(); });
    return *m_results[i];
  }

 private:
  std::vector<std::optional<Result<std::vector<GeneratedKey>>>> m_results;
  std::atomic<std::size_t> m_next{0};
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::vector<std::thread> m_threads;
};

// Stages one clone's disks; returns their paths.
Result<std::vector<std::string>> stage_clone(const CreateOptions& o, const Golden& golden, const StagingDir& staging,
                                             const PlannedClone& c, std::vector<disk::DiskPlan>& plans) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < golden.disks.size(); ++i) {
    const GoldenDisk& d = golden.disks[i];
    std::string path = staging.file(c.volumes[i]);
    if (o.kind == CloneKind::linked) {
      // Named as the golden's volume on the host, resolved beside the overlay:
      // here through the staging directory's link, there in the same pool.
      UTSUSHI_TRY(imagefmt::create_qcow2_overlay(path, d.volume, d.format));
    } else {
      auto dev = UTSUSHI_TRY(imagefmt::open_image(d.path, imagefmt::OpenOptions{d.format, imagefmt::Access::read_only}));
      if (plans.size() <= i) {
        plans.push_back(UTSUSHI_TRY(disk::plan_disk(*dev, d.source)));
      }
      auto view = disk::make_used_view(*dev, plans[i].used);
      imagefmt::OutputOptions out_options;
      out_options.format = "qcow2";
      UTSUSHI_TRY(imagefmt::write_image(*view, path, out_options));
    }
    out.push_back(path);
  }
  return out;
}

Result<void> link_golden(const Golden& golden, const StagingDir& staging) {
  for (const GoldenDisk& d : golden.disks) {
    std::error_code ec;
    fs::create_symlink(d.path, staging.file(d.volume), ec);
    if (ec) {
      return fail(Errc::io_error, fmt::format("linking {} into {}: {}", d.path, staging.path(), ec.message()));
    }
  }
  return {};
}

Result<void> start_clones(std::vector<HostState>& hosts, std::vector<PlannedClone>& plan, const CreateOptions& o,
                          const CreateEvents& events) {
  std::vector<PlannedClone*> to_start;
  for (PlannedClone& c : plan) {
    if (!c.record.started) {
      to_start.push_back(&c);
    }
  }
  unsigned batch = std::max(1u, o.start_batch);
  for (std::size_t i = 0; i < to_start.size(); i += batch) {
    if (i > 0) {
      for (auto until = Clock::now() + o.start_interval; Clock::now() < until;) {
        UTSUSHI_TRY(check_cancelled());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    for (std::size_t k = i; k < std::min(to_start.size(), i + batch); ++k) {
      PlannedClone& c = *to_start[k];
      UTSUSHI_TRY_CTX(hosts[c.host].conn->start(c.record.name), c.record.name);
      c.record.started = true;
      if (events.on_clone) {
        events.on_clone(c.record.name, "started");
      }
    }
  }
  return {};
}

}  // namespace

Result<CreateReport> create_clones(const CreateOptions& o, const CreateEvents& events) {
  auto t0 = Clock::now();
  CreateReport report;
  report.golden = o.golden;
  Phases phases(events, report);
  auto clone_event = [&](const std::string& name, const std::string& what) {
    UTSUSHI_LOG_INFO("{}: {}", name, what);
    if (events.on_clone) {
      events.on_clone(name, what);
    }
  };

  // 1. Checks, read-only everywhere.
  phases.begin("check", "checking the golden, the hosts and the names");
  UTSUSHI_TRY(selected_operations(o.operations));
  std::vector<HostState> hosts = UTSUSHI_TRY(connect_hosts(o));
  Golden golden = UTSUSHI_TRY(open_golden(o.golden, hosts.front().conn.get(), {o.work_dir + "/cache", {}}));
  for (HostState& h : hosts) {
    UTSUSHI_TRY(check_golden_unused(golden, *h.conn));
  }
  guest::IdentityParams common;
  common.authorized_keys = UTSUSHI_TRY(read_public_keys(o.ssh_key_files));
  if (!o.root_password_file.empty()) {
    std::string password = UTSUSHI_TRY(read_password_file(o.root_password_file));
    common.root_password_hash = UTSUSHI_TRY(hash_password(password));
    std::fill(password.begin(), password.end(), '\0');
  }
  common.run = UTSUSHI_TRY(read_scripts(o.run_scripts));
  common.firstboot = UTSUSHI_TRY(read_scripts(o.firstboot_scripts));
  std::vector<PlannedClone> plan = UTSUSHI_TRY(plan_clones(o, golden, hosts));
  std::vector<PlannedClone*> to_make;  // the planned clones that do not exist yet
  for (PlannedClone& c : plan) {
    if (c.action == Action::skip) {
      clone_event(c.record.name, "skipped: exists");
    } else {
      to_make.push_back(&c);
    }
  }

  guest::GuestOs os;
  if (!to_make.empty()) {
    // 2. Staging, with host keys made meanwhile.
    std::vector<std::string> comments;
    for (PlannedClone* c : to_make) {
      comments.push_back("root@" + c->record.hostname);
    }
    KeyMaker keys(comments);
    phases.begin("stage", fmt::format("staging {} {} clone{}", to_make.size(),
                                      o.kind == CloneKind::linked ? "linked" : "full", to_make.size() == 1 ? "" : "s"));
    StagingDir staging = UTSUSHI_TRY(StagingDir::create(o.work_dir));
    if (o.kind == CloneKind::linked) {
      UTSUSHI_TRY(link_golden(golden, staging));
    }
    std::vector<disk::DiskPlan> used_plans;
    std::vector<CustomiseJob> jobs;
    for (PlannedClone* c : to_make) {
      UTSUSHI_TRY(check_cancelled());
      CustomiseJob job;
      job.name = c->record.name;
      for (const std::string& path : UTSUSHI_TRY(stage_clone(o, golden, staging, *c, used_plans))) {
        job.disks.push_back({path, "qcow2", guest::DiskAccess::writable});
      }
      job.params = c->params;
      job.params.authorized_keys = common.authorized_keys;
      job.params.root_password_hash = common.root_password_hash;
      job.params.run = common.run;
      job.params.firstboot = common.firstboot;
      jobs.push_back(std::move(job));
      clone_event(c->record.name, "staged");
    }

    // 3. Every clone's identity, in one launch.
    phases.begin("customise", fmt::format("customising {} clone{}", to_make.size(), to_make.size() == 1 ? "" : "s"));
    CustomiseOptions co;
    co.operations = o.operations;
    co.max_disks = o.max_disks;
    co.parallel = o.appliances;
    SameGuest same;
    for (const GoldenDisk& d : golden.disks) {
      same.golden.push_back({d.path, d.format, guest::DiskAccess::read_only});
    }
    co.same = same;
    co.prepare = [&](std::size_t job, guest::IdentityParams& params) -> Result<void> {
      for (GeneratedKey& k : UTSUSHI_TRY(keys.get(job))) {
        to_make[job]->record.host_keys[k.key.type] = k.fingerprint;
        params.host_keys.push_back(std::move(k.key));
      }
      return {};
    };
    co.on_guest = [&](std::size_t job, const guest::Report&) { clone_event(to_make[job]->record.name, "customised"); };
    co.on_stage = [&](const std::string& what) { UTSUSHI_LOG_INFO("{}", what); };
    CustomiseResult customised = UTSUSHI_TRY(customise(jobs, co));
    os = customised.os;
    for (std::size_t i = 0; i < to_make.size(); ++i) {
      to_make[i]->record.customisation = std::move(customised.reports[i]);
    }

    // 4. The hosts: pools, the golden once per host, then clone by clone.
    phases.begin("publish", "defining the clones on their hosts");
    if (o.kind == CloneKind::linked) {
      std::vector<bool> used(hosts.size(), false);
      for (PlannedClone* c : to_make) {
        used[c->host] = true;
      }
      for (std::size_t h = 0; h < hosts.size(); ++h) {
        if (used[h]) {
          UTSUSHI_TRY(ensure_golden(hosts[h], golden, events.upload_progress));
        }
      }
    }
    for (std::size_t i = 0; i < to_make.size(); ++i) {
      UTSUSHI_TRY(check_cancelled());
      PlannedClone& c = *to_make[i];
      HostState& host = hosts[c.host];
      if (c.action == Action::redo) {
        UTSUSHI_TRY(remove_incomplete(host, c));
      }
      std::vector<std::string> staged_disks;
      for (const guest::DiskSpec& d : jobs[i].disks) {
        staged_disks.push_back(d.path);
      }
      c.record.disks = UTSUSHI_TRY(publish_clone(host, o, golden, os, c, staged_disks, events.upload_progress));
      clone_event(c.record.name, "complete");
    }
  }

  if (o.start) {
    phases.begin("start", "starting the clones");
    UTSUSHI_TRY(start_clones(hosts, plan, o, events));
  }
  phases.end();
  for (PlannedClone& c : plan) {
    report.clones.push_back(std::move(c.record));
  }
  report.seconds["total"] = std::chrono::duration<double>(Clock::now() - t0).count();
  return report;
}

}  // namespace utsushi::clone
