#include "utsushi/livemig/libvirt_host.h"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <fmt/core.h>

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "utsushi/common/fd.h"
#include "utsushi/common/log.h"
#include "utsushi/livemig/domain_xml.h"

namespace utsushi::livemig {

using namespace std::chrono;
using nlohmann::json;

namespace {

std::string last_error() {
  const char* m = virGetLastErrorMessage();
  return m ? m : "unknown libvirt error";
}

bool last_error_is(int code) {
  virErrorPtr e = virGetLastError();
  return e && e->code == code;
}

void ignore_libvirt_error(void*, virErrorPtr) {}  // errors are reported through Result, not stderr

// Guards the event loop's start and stop (libvirt allows one thread running
// virEventRunDefaultImpl) and the state below.
std::mutex g_loop_mutex;
std::condition_variable g_loop_stopped;
bool g_loop_thread_alive = false;  // a loop thread runs or is being stopped
// The loop's wake-up timer, made once with the event loop registration and
// kept: a timer libvirt is asked to remove is freed only by a later
// iteration of the loop, which a loop that is stopping never runs.
int g_loop_timer = -1;

}  // namespace

// libvirt's default event loop on a thread of its own. A 100 ms timer makes
// every iteration return in bounded time, so the thread sees `stop`; on stop
// the timer fires at once.
class LibvirtEventLoop {
 public:
  static Result<std::shared_ptr<LibvirtEventLoop>> acquire() {
    static std::weak_ptr<LibvirtEventLoop> current;
    static std::once_flag once;
    static int registered = -1;
    std::unique_lock lock(g_loop_mutex);
    if (auto p = current.lock()) {
      return p;
    }
    std::call_once(once, [] {
      virSetErrorFunc(nullptr, ignore_libvirt_error);
      registered = virEventRegisterDefaultImpl();
      if (registered >= 0) {
        g_loop_timer = virEventAddTimeout(k_loop_tick_ms, [](int, void*) {}, nullptr, nullptr);
      }
    });
    if (registered < 0) {
      return fail(Errc::internal, "libvirt: cannot register the default event loop: " + last_error());
    }
    if (g_loop_timer < 0) {
      return fail(Errc::internal, "libvirt: cannot add the event loop's timer: " + last_error());
    }
    // The last host just closed: its loop's destructor may not have stopped
    // the thread yet. Never run two.
    g_loop_stopped.wait(lock, [] { return !g_loop_thread_alive; });
    virEventUpdateTimeout(g_loop_timer, k_loop_tick_ms);
    std::shared_ptr<LibvirtEventLoop> loop(new LibvirtEventLoop());
    LibvirtEventLoop* raw = loop.get();
    loop->m_thread = std::thread([raw] {
      while (!raw->m_stop.load()) {
        if (virEventRunDefaultImpl() < 0) {
          UTSUSHI_LOG_WARN("libvirt event loop: {}", last_error());
          std::this_thread::sleep_for(milliseconds(k_loop_tick_ms));
        }
      }
    });
    g_loop_thread_alive = true;
    current = loop;
    return loop;
  }

  ~LibvirtEventLoop() {
    std::lock_guard lock(g_loop_mutex);
    m_stop = true;
    virEventUpdateTimeout(g_loop_timer, 0);  // wakes the loop now, not on the next tick
    if (m_thread.joinable()) {
      m_thread.join();
    }
    g_loop_thread_alive = false;
    g_loop_stopped.notify_all();
  }

 private:
  static constexpr int k_loop_tick_ms = 100;
  LibvirtEventLoop() = default;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

// Events of one domain, filled on the event-loop thread.
struct EventSink {
  std::string name;
  std::mutex mutex;
  std::condition_variable arrived;
  std::deque<QmpEvent> events;
  std::string lost;  // set: the libvirt connection closed (why); no event comes any more
};

// Routes a connection's QEMU monitor events to the monitors by domain name.
// libvirt 9.0's remote driver refuses a second registration of the same
// callback on a connection ("event callback already tracked"), and asks the
// daemon for events only for the first registration's domain filter, so one
// registration for all domains per connection is the reliable shape.
// libvirt owns a reference (released by its free callback), so a late
// callback after deregistration still finds live memory.
struct EventRouter {
  std::mutex mutex;
  std::multimap<std::string, std::shared_ptr<EventSink>> sinks;
  std::string lost;

  void add(const std::string& domain, std::shared_ptr<EventSink> sink) {
    std::lock_guard lock(mutex);
    if (!lost.empty()) {
      std::lock_guard sink_lock(sink->mutex);
      sink->lost = lost;
    }
    sinks.emplace(domain, std::move(sink));
  }
  // The connection closed: every waiter stops waiting at once.
  void close(const std::string& why) {
    std::lock_guard lock(mutex);
    lost = why;
    for (auto& [domain, sink] : sinks) {
      std::lock_guard sink_lock(sink->mutex);
      sink->lost = why;
      sink->arrived.notify_all();
    }
  }
  void remove(const std::shared_ptr<EventSink>& sink) {
    std::lock_guard lock(mutex);
    std::erase_if(sinks, [&](const auto& kv) { return kv.second == sink; });
  }
};

namespace {

void on_monitor_event(virConnectPtr, virDomainPtr dom, const char* event, long long seconds, unsigned int micros,
                      const char* details, void* opaque) {
  auto& router = **static_cast<std::shared_ptr<EventRouter>*>(opaque);
  const char* domain = dom ? virDomainGetName(dom) : nullptr;
  if (!domain) {
    return;
  }
  QmpEvent e;
  e.name = event ? event : "";
  e.data = details ? json::parse(details, nullptr, false) : json::object();
  if (e.data.is_discarded()) {
    e.data = json::object();
  }
  e.timestamp_us = seconds * 1000000 + micros;
  std::lock_guard route_lock(router.mutex);
  auto [first, last] = router.sinks.equal_range(domain);
  for (auto it = first; it != last; ++it) {
    EventSink& sink = *it->second;
    UTSUSHI_LOG_DEBUG("QEMU event {} of {} at {}.{:06}", e.name, sink.name, seconds, micros);
    std::lock_guard lock(sink.mutex);
    sink.events.push_back(e);
    if (sink.events.size() > 1000) {
      sink.events.pop_front();
    }
    sink.arrived.notify_all();
  }
}

void free_router(void* opaque) { delete static_cast<std::shared_ptr<EventRouter>*>(opaque); }

const char* close_reason(int reason) {
  switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_ERROR: return "I/O error";
    case VIR_CONNECT_CLOSE_REASON_EOF: return "libvirtd closed the connection";
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE: return "libvirtd stopped answering keepalives";
    default: return "closed";
  }
}

// Runs on the event-loop thread when the connection dies (libvirtd killed or
// hung, network gone): logs it and wakes every monitor waiting for an event.
struct CloseWatch {
  std::string uri;
  std::shared_ptr<EventRouter> router;
};

void on_connection_closed(virConnectPtr, int reason, void* opaque) {
  auto& watch = *static_cast<CloseWatch*>(opaque);
  std::string why = fmt::format("the libvirt connection to {} was lost ({})", watch.uri, close_reason(reason));
  UTSUSHI_LOG_ERROR("{}", why);
  watch.router->close(why);
}

void free_close_watch(void* opaque) { delete static_cast<CloseWatch*>(opaque); }

// As QmpClient's reply timeout (endpoints.cpp): QEMU answers in milliseconds
// even on a loaded host, so this much silence means it cannot answer.
constexpr milliseconds k_reply_timeout{15000};

// One monitor command in flight on its own thread (LibvirtMonitor::execute).
struct MonitorCall {
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  std::string reply;  // QEMU's reply, when libvirt returned one
  std::string error;  // libvirt's error, when it failed
  bool gone = false;  // the domain no longer runs
};

class LibvirtMonitor final : public Monitor {
 public:
  LibvirtMonitor(std::shared_ptr<LibvirtHost> host, std::shared_ptr<EventRouter> router, VirDomain dom,
                 std::string path)
      : m_host(std::move(host)), m_router(std::move(router)), m_dom(std::move(dom)), m_path(std::move(path)) {
    m_sink->name = m_path;
    const char* domain = virDomainGetName(m_dom.get());
    m_router->add(domain ? domain : "", m_sink);
  }
  ~LibvirtMonitor() override { m_router->remove(m_sink); }
  LibvirtMonitor(const LibvirtMonitor&) = delete;
  LibvirtMonitor& operator=(const LibvirtMonitor&) = delete;

  // libvirt waits for QEMU's reply without any time limit, so a QEMU that
  // stopped answering (stopped by a signal, hung with its global lock held)
  // would block livemig for good. The call runs on a thread of its own; past
  // k_reply_timeout the caller gets Errc::unavailable with errno 0 (QEMU may
  // still be there) and this monitor counts as stuck: later calls fail at once
  // instead of queueing behind the first one in libvirtd. The thread holds its
  // own references (domain, hence connection; a duplicate of `pass_fd`) and
  // ends whenever libvirt returns.
  Result<json> execute(const std::string& command, const json& arguments, int pass_fd) override {
    if (!m_stuck.empty()) {
      return fail(Errc::unavailable, fmt::format("{}: {}: not sent, {}", m_path, command, m_stuck));
    }
    json req = {{"execute", command}};
    if (!arguments.empty()) {
      req["arguments"] = arguments;
    }
    auto call = std::make_shared<MonitorCall>();
    Fd fd;
    if (pass_fd >= 0) {
      fd = Fd(::fcntl(pass_fd, F_DUPFD_CLOEXEC, 0));
      if (!fd) {
        return fail_errno(errno, fmt::format("{}: {}: duplicating the descriptor for QEMU", m_path, command));
      }
    }
    if (virDomainRef(m_dom.get()) < 0) {
      return fail(Errc::unavailable, fmt::format("{}: {}: {}", m_path, command, last_error()));
    }
    std::thread([call, dom = VirDomain(m_dom.get()), text = req.dump(), fd = std::move(fd)] {
      char* reply = nullptr;
      int fds[1] = {fd.get()};
      int r = virDomainQemuMonitorCommandWithFiles(dom.get(), text.c_str(), fd ? 1 : 0, fd ? fds : nullptr, nullptr,
                                                   nullptr, &reply, 0);
      std::lock_guard lock(call->mutex);
      if (r < 0) {
        // libvirt's last error is per thread: read it here. A domain that no
        // longer exists or no longer runs has no monitor (monitor_gone()).
        call->error = last_error();
        call->gone = last_error_is(VIR_ERR_NO_DOMAIN) || last_error_is(VIR_ERR_OPERATION_INVALID);
      } else {
        call->reply = reply ? reply : "";
        std::free(reply);
      }
      call->done = true;
      call->finished.notify_all();
    }).detach();
    std::unique_lock lock(call->mutex);
    if (!call->finished.wait_for(lock, k_reply_timeout, [&] { return call->done; })) {
      m_stuck = fmt::format("QEMU did not answer {} within {} s (stopped or hung?)", command,
                            duration_cast<seconds>(k_reply_timeout).count());
      return fail(Errc::unavailable, fmt::format("{}: {}", m_path, m_stuck));
    }
    if (!call->error.empty()) {
      return fail(Errc::unavailable, fmt::format("{}: {}: {}", m_path, command, call->error), call->gone ? ESRCH : 0);
    }
    json msg = json::parse(call->reply, nullptr, false);
    if (msg.is_discarded() || !msg.is_object()) {
      return fail(Errc::corruption, fmt::format("{}: {}: unparsable reply", m_path, command));
    }
    if (msg.contains("error")) {
      return fail(Errc::failed_precondition, fmt::format("{}: QMP {} failed: {}", m_path, command,
                                                         msg["error"].value("desc", std::string("unknown error"))));
    }
    return msg.value("return", json::object());
  }

  Result<QmpEvent> wait_event(const std::string& name, milliseconds timeout) override {
    std::unique_lock lock(m_sink->mutex);
    std::optional<QmpEvent> found;
    m_sink->arrived.wait_for(lock, timeout, [&] {
      for (const auto& e : m_sink->events) {
        if (e.name == name) {
          found = e;
          return true;
        }
      }
      return !m_sink->lost.empty();
    });
    if (!found && !m_sink->lost.empty()) {
      return fail(Errc::unavailable, fmt::format("{}: waiting for {}: {}", m_path, name, m_sink->lost));
    }
    if (!found) {
      return fail(Errc::unavailable, fmt::format("{}: no {} event within {} ms", m_path, name, timeout.count()));
    }
    return *found;
  }

  std::optional<QmpEvent> last_event(const std::string& name) const override {
    std::lock_guard lock(m_sink->mutex);
    for (auto it = m_sink->events.rbegin(); it != m_sink->events.rend(); ++it) {
      if (it->name == name) {
        return *it;
      }
    }
    return std::nullopt;
  }

  Result<void> poll_events() override { return {}; }  // events arrive on the loop thread
  const std::string& path() const noexcept override { return m_path; }

 private:
  std::shared_ptr<LibvirtHost> m_host;  // keeps the connection (and the loop) open
  std::shared_ptr<EventRouter> m_router;
  VirDomain m_dom;
  std::string m_path;
  std::shared_ptr<EventSink> m_sink = std::make_shared<EventSink>();
  std::string m_stuck;  // why this monitor is not asked any more; empty while it answers
};

const char* state_name(int state) {
  switch (state) {
    case VIR_DOMAIN_RUNNING: return "running";
    case VIR_DOMAIN_BLOCKED: return "blocked";
    case VIR_DOMAIN_PAUSED: return "paused";
    case VIR_DOMAIN_SHUTDOWN: return "shutting down";
    case VIR_DOMAIN_SHUTOFF: return "shut off";
    case VIR_DOMAIN_CRASHED: return "crashed";
    case VIR_DOMAIN_PMSUSPENDED: return "pmsuspended";
    default: return "unknown";
  }
}

}  // namespace

Result<std::shared_ptr<LibvirtHost>> LibvirtHost::open(const std::string& uri) {
  std::shared_ptr<LibvirtHost> host(new LibvirtHost());
  host->m_loop = UTSUSHI_TRY(LibvirtEventLoop::acquire());
  host->m_conn = VirConnection(virConnectOpen(uri.c_str()));
  if (!host->m_conn) {
    return fail(Errc::unavailable, fmt::format("cannot connect to libvirt at {}: {}", uri, last_error()));
  }
  host->m_uri = uri;
  host->m_router = std::make_shared<EventRouter>();
  // A libvirtd that hangs (rather than dies) is noticed within ~20 s instead
  // of never; drivers without keepalive (test:///) answer 1 or -1: fine.
  (void)virConnectSetKeepAlive(host->m_conn.get(), 5, 3);
  auto* watch = new CloseWatch{uri, host->m_router};
  if (virConnectRegisterCloseCallback(host->m_conn.get(), on_connection_closed, watch, free_close_watch) < 0) {
    delete watch;
  } else {
    host->m_close_watch = true;
  }
  return host;
}

LibvirtHost::~LibvirtHost() {
  // On a connection that is already gone these fail at once: nothing waits.
  if (m_events_callback >= 0) {
    virConnectDomainQemuMonitorEventDeregister(m_conn.get(), m_events_callback);
  }
  if (m_close_watch) {
    virConnectUnregisterCloseCallback(m_conn.get(), on_connection_closed);
  }
}

Result<VirDomain> LibvirtHost::lookup(const std::string& domain) {
  VirDomain d(virDomainLookupByName(m_conn.get(), domain.c_str()));
  if (!d) {
    return fail(last_error_is(VIR_ERR_NO_DOMAIN) ? Errc::not_found : Errc::unavailable,
                fmt::format("domain {} on {}: {}", domain, m_uri, last_error()));
  }
  return d;
}

Result<std::vector<HostGuest>> LibvirtHost::list_guests() {
  virDomainPtr* list = nullptr;
  int n = virConnectListAllDomains(m_conn.get(), &list, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  if (n < 0) {
    return fail(Errc::unavailable, fmt::format("listing the domains of {}: {}", m_uri, last_error()));
  }
  std::vector<VirDomain> doms;
  for (int i = 0; i < n; ++i) {
    doms.emplace_back(list[i]);
  }
  std::free(list);
  const char* type = virConnectGetType(m_conn.get());
  std::string driver = type ? type : "?";
  std::vector<HostGuest> guests;
  for (const auto& d : doms) {
    HostGuest g;
    const char* name = virDomainGetName(d.get());
    g.name = name ? name : "?";
    int state = 0;
    int reason = 0;
    if (virDomainGetState(d.get(), &state, &reason, 0) < 0) {
      g.state = "unknown";
      g.skip_reason = "state unknown: " + last_error();
    } else {
      g.state = state_name(state);
      if (state != VIR_DOMAIN_RUNNING) {
        g.skip_reason = fmt::format("not running ({})", g.state);
      }
    }
    if (driver != "QEMU") {
      g.skip_reason = fmt::format("not a QEMU domain (libvirt driver {})", driver);
    }
    guests.push_back(std::move(g));
  }
  std::sort(guests.begin(), guests.end(), [](const HostGuest& a, const HostGuest& b) { return a.name < b.name; });
  return guests;
}

Result<std::unique_ptr<Monitor>> LibvirtHost::monitor(const std::string& domain) {
  auto d = UTSUSHI_TRY(lookup(domain));
  if (virDomainIsActive(d.get()) != 1) {
    return fail(Errc::failed_precondition, fmt::format("domain {} on {} is not running", domain, m_uri));
  }
  {
    std::lock_guard lock(m_events_mutex);
    if (m_events_callback < 0) {
      auto* opaque = new std::shared_ptr<EventRouter>(m_router);
      m_events_callback = virConnectDomainQemuMonitorEventRegister(m_conn.get(), nullptr, nullptr, on_monitor_event,
                                                                   opaque, free_router, 0);
      if (m_events_callback < 0) {
        delete opaque;
        return fail(Errc::unavailable, fmt::format("{}: cannot subscribe to QEMU events of domain {}: {}", m_uri,
                                                   domain, last_error()));
      }
    }
  }
  return std::unique_ptr<Monitor>(
      std::make_unique<LibvirtMonitor>(shared_from_this(), m_router, std::move(d), fmt::format("{}@{}", domain, m_uri)));
}

Result<std::string> LibvirtHost::migratable_xml(const std::string& domain) {
  auto d = UTSUSHI_TRY(lookup(domain));
  auto get = [&](unsigned int flags) -> Result<std::string> {
    char* xml = virDomainGetXMLDesc(d.get(), flags);
    if (!xml) {
      return fail(Errc::unavailable, fmt::format("XML of domain {} on {}: {}", domain, m_uri, last_error()));
    }
    std::string text(xml);
    std::free(xml);
    return text;
  };
  // Secrets stay on this host: the link is not encrypted. A guest whose
  // console has a password would lose it on the destination, so it is not
  // moved at all (the secure XML is read here only to find that out).
  auto secure = UTSUSHI_TRY(get(VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE));
  auto protected_graphics = UTSUSHI_TRY(graphics_with_password(secure));
  if (!protected_graphics.empty()) {
    return fail(Errc::not_supported,
                fmt::format("domain {} on {}: its {} console has a password, which livemig does not send over its "
                            "unencrypted link (the destination's console would be open); remove the password or "
                            "move this guest another way",
                            domain, m_uri, protected_graphics.front()));
  }
  return get(VIR_DOMAIN_XML_MIGRATABLE);
}

Result<void> LibvirtHost::retire_source(const std::string& domain, bool undefine) {
  auto d = UTSUSHI_TRY(lookup(domain));
  int persistent = virDomainIsPersistent(d.get());
  if (persistent < 0) {
    return fail(Errc::unavailable, fmt::format("domain {} runs on the destination, but whether its source definition "
                                               "on {} is persistent is unknown: {}",
                                               domain, m_uri, last_error()));
  }
  // The guest runs on the destination now: a reboot of this host must not
  // start it a second time (on the same shared disks).
  if (persistent == 1 && virDomainSetAutostart(d.get(), 0) < 0) {
    return fail(Errc::unavailable, fmt::format("domain {} runs on the destination, but autostart of its source "
                                               "definition on {} could not be turned off (the source is paused, "
                                               "not destroyed): {}",
                                               domain, m_uri, last_error()));
  }
  if (virDomainIsActive(d.get()) == 1 && virDomainDestroy(d.get()) < 0) {
    return fail(Errc::unavailable, fmt::format("destroying source domain {} on {}: {}", domain, m_uri, last_error()));
  }
  if (undefine && persistent == 1 &&
      virDomainUndefineFlags(d.get(), VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                          VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA) < 0) {
    return fail(Errc::unavailable,
                fmt::format("undefining source domain {} on {}: {}", domain, m_uri, last_error()));
  }
  return {};
}

Result<void> LibvirtHost::check_absent(const std::string& name, const std::string& uuid) {
  if (VirDomain d(virDomainLookupByName(m_conn.get(), name.c_str())); d) {
    return fail(Errc::failed_precondition, fmt::format("a domain named {} already exists on {}", name, m_uri));
  }
  if (!uuid.empty()) {
    if (VirDomain d(virDomainLookupByUUIDString(m_conn.get(), uuid.c_str())); d) {
      const char* other = virDomainGetName(d.get());
      return fail(Errc::failed_precondition, fmt::format("a domain with UUID {} ({}) already exists on {}", uuid,
                                                         other ? other : "?", m_uri));
    }
  }
  return {};
}

Result<void> LibvirtHost::create_paused(const std::string& name, const std::string& xml) {
  VirDomain d(virDomainCreateXML(m_conn.get(), xml.c_str(), VIR_DOMAIN_START_PAUSED));
  if (!d) {
    return fail(Errc::failed_precondition,
                fmt::format("starting destination domain {} on {}: {}", name, m_uri, last_error()));
  }
  return {};
}

Result<void> LibvirtHost::resume(const std::string& domain) {
  auto d = UTSUSHI_TRY(lookup(domain));
  if (virDomainResume(d.get()) < 0) {
    return fail(Errc::aborted, fmt::format("resuming domain {} on {}: {}", domain, m_uri, last_error()));
  }
  return {};
}

Result<void> LibvirtHost::discard(const std::string& domain) {
  VirDomain d(virDomainLookupByName(m_conn.get(), domain.c_str()));
  if (!d) {
    if (last_error_is(VIR_ERR_NO_DOMAIN)) {
      return {};  // QEMU exited and libvirt forgot the transient domain
    }
    return fail(Errc::unavailable, fmt::format("domain {} may be left on {}: {}", domain, m_uri, last_error()));
  }
  int active = virDomainIsActive(d.get());
  if (active < 0 && last_error_is(VIR_ERR_NO_DOMAIN)) {
    return {};  // forgotten since the lookup
  }
  if (active < 0) {
    return fail(Errc::unavailable,
                fmt::format("domain {} may be left on {}: whether it runs is unknown: {}", domain, m_uri, last_error()));
  }
  // Not running any more, or forgotten meanwhile (its QEMU exited): gone.
  if (active == 1 && virDomainDestroy(d.get()) < 0 && !last_error_is(VIR_ERR_OPERATION_INVALID) &&
      !last_error_is(VIR_ERR_NO_DOMAIN)) {
    return fail(Errc::unavailable,
                fmt::format("could not destroy domain {} on {}: {}", domain, m_uri, last_error()));
  }
  return {};
}

Result<void> LibvirtHost::define(const std::string& name, const std::string& xml) {
  VirDomain d(virDomainDefineXML(m_conn.get(), xml.c_str()));
  if (!d) {
    return fail(Errc::failed_precondition, fmt::format("defining domain {} on {}: {}", name, m_uri, last_error()));
  }
  return {};
}

}  // namespace utsushi::livemig
