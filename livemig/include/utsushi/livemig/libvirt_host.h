#pragma once
// A libvirt host as livemig sees it: a virt::Connection (connection.h) plus
// what migration adds: the guests it can move (source side), and the
// LibvirtMonitor, the Monitor (monitor.h) of one of its QEMU domains. The
// destination side's domain operations (check_absent,
// create_transient_paused, resume, destroy, define) are the connection's.
//
// Libvirt owns each domain's QMP socket, so livemig reaches QEMU through
// libvirt-qemu: commands with virDomainQemuMonitorCommandWithFiles (which
// also passes the stream socket for `getfd`), events with
// virConnectDomainQemuMonitorEventRegister (QEMU's raw events and their
// timestamps), served by the connection's event loop. libvirt marks such
// domains tainted ("custom-monitor", and on the destination "custom-argv"
// for -incoming defer); nothing else changes. When the connection is lost,
// monitors waiting for an event fail at once.
//
// Thread-safety: a LibvirtHost may be used from several threads (libvirt
// connections are); a LibvirtMonitor, like every Monitor, by one at a time.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "utsushi/livemig/monitor.h"
#include "utsushi/virt/connection.h"

namespace utsushi::livemig {

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

  const std::string& uri() const noexcept { return m_conn->uri(); }
  virt::Connection& connection() noexcept { return *m_conn; }

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
  // its persistent definition (keeping its NVRAM file). Errc::unavailable
  // when a step fails; the steps before it stay done, those after it are not
  // attempted.
  [[nodiscard]] Result<void> retire_source(const std::string& domain, bool undefine);

 private:
  LibvirtHost() = default;

  std::shared_ptr<virt::Connection> m_conn;
  // QEMU monitor events of every domain, registered once per connection on
  // the first monitor() and routed to each monitor by domain name.
  std::mutex m_events_mutex;
  std::shared_ptr<EventRouter> m_router;  // made by open()
  int m_events_callback = -1;
  int m_close_listener = -1;
};

}  // namespace utsushi::livemig
