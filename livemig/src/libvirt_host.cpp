#include "utsushi/livemig/libvirt_host.h"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <fmt/core.h>

#include <fcntl.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "utsushi/common/fd.h"
#include "utsushi/common/log.h"
#include "utsushi/virt/domain_xml.h"
#include "utsushi/virt/libvirt_error.h"

namespace utsushi::livemig {

using namespace std::chrono;
using nlohmann::json;

using virt::last_error;
using virt::last_error_is;
using virt::VirDomain;

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

}  // namespace

Result<std::shared_ptr<LibvirtHost>> LibvirtHost::open(const std::string& uri) {
  std::shared_ptr<LibvirtHost> host(new LibvirtHost());
  host->m_conn = UTSUSHI_TRY(virt::Connection::open(uri));
  host->m_router = std::make_shared<EventRouter>();
  // A lost libvirtd wakes every monitor waiting for an event.
  host->m_close_listener =
      host->m_conn->add_close_listener([router = host->m_router](const std::string& why) { router->close(why); });
  return host;
}

LibvirtHost::~LibvirtHost() {
  // On a connection that is already gone this fails at once: nothing waits.
  if (m_events_callback >= 0) {
    virConnectDomainQemuMonitorEventDeregister(m_conn->get(), m_events_callback);
  }
  m_conn->remove_close_listener(m_close_listener);
}

Result<std::vector<HostGuest>> LibvirtHost::list_guests() {
  std::vector<HostGuest> guests;
  for (const auto& d : UTSUSHI_TRY(m_conn->list_domains())) {
    if (!d.active) {
      continue;
    }
    HostGuest g{d.name, std::string(virt::domain_state_name(d.state)), {}};
    if (d.state != virt::DomainState::running) {
      g.skip_reason = fmt::format("not running ({})", g.state);
    }
    if (m_conn->driver() != "QEMU") {
      g.skip_reason = fmt::format("not a QEMU domain (libvirt driver {})", m_conn->driver());
    }
    guests.push_back(std::move(g));
  }
  return guests;
}

Result<std::unique_ptr<Monitor>> LibvirtHost::monitor(const std::string& domain) {
  auto d = UTSUSHI_TRY(m_conn->lookup(domain));
  if (virDomainIsActive(d.get()) != 1) {
    return fail(Errc::failed_precondition, fmt::format("domain {} on {} is not running", domain, uri()));
  }
  {
    std::lock_guard lock(m_events_mutex);
    if (m_events_callback < 0) {
      auto* opaque = new std::shared_ptr<EventRouter>(m_router);
      m_events_callback = virConnectDomainQemuMonitorEventRegister(m_conn->get(), nullptr, nullptr, on_monitor_event,
                                                                   opaque, free_router, 0);
      if (m_events_callback < 0) {
        delete opaque;
        return fail(Errc::unavailable, fmt::format("{}: cannot subscribe to QEMU events of domain {}: {}", uri(),
                                                   domain, last_error()));
      }
    }
  }
  return std::unique_ptr<Monitor>(
      std::make_unique<LibvirtMonitor>(shared_from_this(), m_router, std::move(d), fmt::format("{}@{}", domain, uri())));
}

Result<std::string> LibvirtHost::migratable_xml(const std::string& domain) {
  // Secrets stay on this host: the link is not encrypted. A guest whose
  // console has a password would lose it on the destination, so it is not
  // moved at all (the secure XML is read here only to find that out).
  auto secure = UTSUSHI_TRY(m_conn->xml(domain, virt::k_xml_migratable | virt::k_xml_secure));
  auto protected_graphics = UTSUSHI_TRY(virt::graphics_with_password(secure));
  if (!protected_graphics.empty()) {
    return fail(Errc::not_supported,
                fmt::format("domain {} on {}: its {} console has a password, which livemig does not send over its "
                            "unencrypted link (the destination's console would be open); remove the password or "
                            "move this guest another way",
                            domain, uri(), protected_graphics.front()));
  }
  return m_conn->xml(domain, virt::k_xml_migratable);
}

Result<void> LibvirtHost::retire_source(const std::string& domain, bool undefine) {
  auto info = UTSUSHI_TRY(m_conn->info(domain));
  // The guest runs on the destination now: a reboot of this host must not
  // start it a second time (on the same shared disks).
  if (info.persistent) {
    if (auto r = m_conn->set_autostart(domain, false); !r) {
      return fail(Errc::unavailable, fmt::format("domain {} runs on the destination, but autostart of its source "
                                                 "definition on {} could not be turned off (the source is paused, "
                                                 "not destroyed): {}",
                                                 domain, uri(), r.error().message()));
    }
  }
  UTSUSHI_TRY_CTX(m_conn->destroy(domain), "destroying the source domain");
  if (undefine && info.persistent) {
    UTSUSHI_TRY_CTX(m_conn->undefine(domain, virt::Nvram::keep), "undefining the source domain");
  }
  return {};
}

}  // namespace utsushi::livemig
