#pragma once
// A libvirt host as livemig sees it: the guests it runs (source side), the
// domains it starts to receive a migration (destination side), and the
// LibvirtMonitor, the Monitor (monitor.h) of one of its QEMU domains.
//
// Libvirt owns each domain's QMP socket, so livemig reaches QEMU through
// libvirt-qemu: commands with virDomainQemuMonitorCommandWithFiles (which
// also passes the stream socket for `getfd`), events with
// virConnectDomainQemuMonitorEventRegister (QEMU's raw events and their
// timestamps). libvirt marks such domains tainted ("custom-monitor", and on
// the destination "custom-argv" for -incoming defer); nothing else changes.
//
// Events need libvirt's default event loop: open() registers it (once per
// process) and runs it on a thread shared by every open host; the thread is
// stopped and joined when the last host is closed. open() also turns on
// libvirt's keepalive (5 s, 3 misses) and watches the connection: when it is
// lost (libvirtd killed or hung) the loss is logged with the URI, monitors
// waiting for an event fail at once, and every call fails with libvirt's
// error instead of waiting.
//
// Thread-safety: a LibvirtHost may be used from several threads (libvirt
// connections are); a LibvirtMonitor, like every Monitor, by one at a time.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "utsushi/common/handles.h"
#include "utsushi/livemig/monitor.h"

namespace utsushi::livemig {

class LibvirtEventLoop;
struct EventRouter;

// One active domain of a source host.
struct HostGuest {
  std::string name;
  std::string state;        // running, paused, ... (virDomainGetState)
  std::string skip_reason;  // empty: can be migrated
};

class LibvirtHost : public std::enable_shared_from_this<LibvirtHost> {
 public:
  // Connects to `uri` read-write (Errc::unavailable when libvirt cannot).
  [[nodiscard]] static Result<std::shared_ptr<LibvirtHost>> open(const std::string& uri);
  ~LibvirtHost();
  LibvirtHost(const LibvirtHost&) = delete;
  LibvirtHost& operator=(const LibvirtHost&) = delete;

  const std::string& uri() const noexcept { return m_uri; }

  // Every active domain, sorted by name; those that are not running, or not
  // QEMU domains, carry the reason they are skipped.
  [[nodiscard]] Result<std::vector<HostGuest>> list_guests();
  // The monitor of a running domain (Errc::not_found when there is none).
  [[nodiscard]] Result<std::unique_ptr<Monitor>> monitor(const std::string& domain);
  // virDomainGetXMLDesc(VIR_DOMAIN_XML_MIGRATABLE), without secrets.
  // Errc::not_supported when a <graphics> of the domain has a password (it
  // would not reach the destination, whose console would then be open).
  [[nodiscard]] Result<std::string> migratable_xml(const std::string& domain);
  // After a successful move: turns autostart off on a persistent source
  // definition (so a reboot of this host does not start the guest a second
  // time), destroys the (paused) source domain and, with `undefine`, removes
  // its persistent definition. Errc::unavailable when a step fails; the steps
  // before it stay done, those after it are not attempted.
  [[nodiscard]] Result<void> retire_source(const std::string& domain, bool undefine);

  // Destination side. Errc::failed_precondition when a domain with this
  // name or UUID (active or only defined) exists on this host.
  [[nodiscard]] Result<void> check_absent(const std::string& name, const std::string& uuid);
  // Creates the transient domain `name` from `xml` with VIR_DOMAIN_START_PAUSED.
  [[nodiscard]] Result<void> create_paused(const std::string& name, const std::string& xml);
  [[nodiscard]] Result<void> resume(const std::string& domain);
  // Destroys a domain if it still runs. Success: it is gone or not running
  // (a transient one then vanishes); Errc::unavailable when that is not
  // known, e.g. the connection to libvirtd was lost.
  [[nodiscard]] Result<void> discard(const std::string& domain);
  // Defines `xml` (whose name is `name`) persistently.
  [[nodiscard]] Result<void> define(const std::string& name, const std::string& xml);

 private:
  LibvirtHost() = default;
  [[nodiscard]] Result<VirDomain> lookup(const std::string& domain);

  std::shared_ptr<LibvirtEventLoop> m_loop;  // outlives the connection
  VirConnection m_conn;
  std::string m_uri;
  // QEMU monitor events of every domain, registered once per connection on
  // the first monitor() and routed to each monitor by domain name.
  std::mutex m_events_mutex;
  std::shared_ptr<EventRouter> m_router;  // made by open()
  int m_events_callback = -1;
  bool m_close_watch = false;
};

}  // namespace utsushi::livemig
