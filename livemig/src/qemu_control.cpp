#include "utsushi/livemig/qemu_control.h"

#include <sys/socket.h>

#include <fmt/core.h>

#include <thread>

#include "utsushi/common/log.h"

namespace utsushi::livemig {

using nlohmann::json;
using namespace std::chrono;

Result<std::string> check_qemu_version(Monitor& qmp) {
  auto v = UTSUSHI_TRY(qmp.execute("query-version"));
  auto q = v.value("qemu", json::object());
  int major = q.value("major", -1);
  int minor = q.value("minor", -1);
  int micro = q.value("micro", -1);
  std::string text = fmt::format("{}.{}.{}", major, minor, micro);
  if (major != 7 || minor != 2) {
    return fail(Errc::not_supported,
                fmt::format("QEMU {} at {}: livemig knows only the QEMU 7.2 migration stream", text, qmp.path()));
  }
  return text;
}

Result<void> force_capabilities(Monitor& qmp, bool auto_converge) {
  static const char* const off[] = {"xbzrle",         "compress",       "multifd",        "postcopy-ram",
                                    "postcopy-preempt", "return-path",  "x-ignore-shared", "validate-uuid",
                                    "block",          "dirty-bitmaps",  "x-colo",         "background-snapshot",
                                    "zero-copy-send", "release-ram",    "rdma-pin-all",   "pause-before-switchover"};
  json caps = json::array();
  for (const char* name : off) {
    caps.push_back({{"capability", name}, {"state", false}});
  }
  caps.push_back({{"capability", "auto-converge"}, {"state", auto_converge}});
  // zero-copy-send only exists where QEMU was built with it; retry without it.
  auto r = qmp.execute("migrate-set-capabilities", {{"capabilities", caps}});
  if (!r) {
    json fewer = json::array();
    for (const auto& c : caps) {
      if (c["capability"] != "zero-copy-send") {
        fewer.push_back(c);
      }
    }
    UTSUSHI_TRY_CTX(qmp.execute("migrate-set-capabilities", {{"capabilities", fewer}}), "forcing capabilities");
  }
  return {};
}

Result<void> set_source_parameters(Monitor& qmp, const SourceParameters& p) {
  json args = {{"downtime-limit", p.downtime_limit_ms},
               {"max-bandwidth", k_open_bandwidth},
               {"tls-creds", ""},
               {"max-cpu-throttle", p.max_cpu_throttle}};
  UTSUSHI_TRY_CTX(qmp.execute("migrate-set-parameters", args), "setting migration parameters");
  return {};
}

Result<void> set_max_bandwidth(Monitor& qmp, std::uint64_t bytes_per_s) {
  UTSUSHI_TRY_CTX(qmp.execute("migrate-set-parameters", {{"max-bandwidth", bytes_per_s}}),
                  fmt::format("setting QEMU's max-bandwidth to {} bytes/s", bytes_per_s));
  return {};
}

Result<Fd> hand_socket_to_qemu(Monitor& qmp, const std::string& name) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    return fail_errno(errno, "socketpair");
  }
  Fd ours(sv[0]);
  Fd theirs(sv[1]);
  int buf = 128 * 1024;
  for (int fd : sv) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  }
  UTSUSHI_TRY_CTX(qmp.execute("getfd", {{"fdname", name}}, theirs.get()), "passing the stream socket to QEMU");
  return ours;
}

Result<MigrationStatus> query_migration(Monitor& qmp) {
  auto j = UTSUSHI_TRY(qmp.execute("query-migrate"));
  MigrationStatus s;
  s.status = j.value("status", std::string("none"));
  s.expected_downtime_ms = j.value("expected-downtime", std::int64_t{-1});
  s.downtime_ms = j.value("downtime", std::int64_t{-1});
  s.error = j.value("error-desc", std::string());
  if (j.contains("ram")) {
    const auto& ram = j["ram"];
    s.dirty_sync_count = ram.value("dirty-sync-count", std::uint64_t{0});
    s.remaining = ram.value("remaining", std::uint64_t{0});
    s.transferred = ram.value("transferred", std::uint64_t{0});
    s.dirty_pages_rate = ram.value("dirty-pages-rate", std::uint64_t{0});
    s.mbps = ram.value("mbps", -1.0);
  }
  return s;
}

Result<std::uint64_t> guest_memory_bytes(Monitor& qmp) {
  auto mem = UTSUSHI_TRY(qmp.execute("query-memory-size-summary"));
  return mem.value("base-memory", std::uint64_t{0}) + mem.value("plugged-memory", std::uint64_t{0});
}

Result<std::string> query_runstate(Monitor& qmp) {
  auto j = UTSUSHI_TRY(qmp.execute("query-status"));
  return j.value("status", std::string("unknown"));
}

Result<std::string> restore_source(Monitor& qmp, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  auto st = UTSUSHI_TRY(query_migration(qmp));
  if (st.status == "active" || st.status == "setup" || st.status == "device" || st.status == "pre-switchover" ||
      st.status == "wait-unplug") {
    UTSUSHI_LOG_INFO("cancelling the migration on {}", qmp.path());
    (void)qmp.execute("migrate_cancel");
  }
  while (steady_clock::now() < deadline) {
    st = UTSUSHI_TRY(query_migration(qmp));
    if (st.status != "active" && st.status != "setup" && st.status != "cancelling" && st.status != "device" &&
        st.status != "pre-switchover") {
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  auto run = UTSUSHI_TRY(query_runstate(qmp));
  if (run != "running") {
    UTSUSHI_LOG_INFO("resuming the source guest (was {})", run);
    UTSUSHI_TRY_CTX(qmp.execute("cont"), "resuming the source guest");
    run = UTSUSHI_TRY(query_runstate(qmp));
  }
  return run;
}

Result<std::string> wait_destination_loaded(Monitor& qmp, milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    auto run = UTSUSHI_TRY_CTX(query_runstate(qmp), "destination QEMU after the stream");
    if (run == "running" || run == "paused") {
      return run;
    }
    if (run != "inmigrate" && run != "restore-vm" && run != "prelaunch") {
      return fail(Errc::aborted, "destination QEMU ended in state " + run);
    }
    if (steady_clock::now() > deadline) {
      return fail(Errc::unavailable, "destination QEMU did not finish loading in time");
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
}

std::optional<QmpEvent> event_after(Monitor& qmp, const std::string& name, const std::optional<QmpEvent>& before,
                                    milliseconds timeout) {
  for (auto until = steady_clock::now() + timeout;;) {
    (void)qmp.poll_events();
    auto ev = qmp.last_event(name);
    if (ev && (!before || ev->timestamp_us > before->timestamp_us)) {
      return ev;
    }
    if (steady_clock::now() >= until) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
}

}  // namespace utsushi::livemig
