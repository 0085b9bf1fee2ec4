#pragma once
// A connection to one libvirt host (qemu:///system, a private daemon's
// socket, test:///default, a remote URI): every libvirt call of utsushi's
// tools goes through it. Storage pools and volumes: storage.h.
//
// open() starts libvirt's default event loop on a thread shared by every
// open Connection (stopped when the last one closes), turns libvirt's
// keepalive on (5 s, 3 misses) and registers a close callback: when the
// connection is lost (libvirtd killed, hung or unreachable) the loss is
// logged with the URI, close listeners run, and every later call fails at
// once with libvirt's error instead of waiting. Errors are Results carrying
// libvirt's message; libvirt never prints to stderr.
//
// Domains are named by name. Lookups that find no domain give
// Errc::not_found; a failure to talk to libvirtd Errc::unavailable; libvirt
// refusing a definition or a state change Errc::failed_precondition.
//
// Thread-safety: a Connection may be used from several threads at once (as
// libvirt connections may).

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/virt/handles.h"
#include "utsushi/virt/metadata.h"

namespace utsushi::virt {

class EventLoop;
struct CloseWatch;

enum class DomainState { running, blocked, paused, shutting_down, shut_off, crashed, pm_suspended, unknown };
std::string_view domain_state_name(DomainState state) noexcept;  // "running", "shut off", ...

// One domain of a host, active or only defined.
struct DomainInfo {
  std::string name;
  std::string uuid;
  DomainState state = DomainState::unknown;
  bool active = false;
  bool persistent = false;
  std::optional<Metadata> metadata;  // utsushi's element (metadata.h), when the domain has one
};

// virDomainGetXMLDesc flags, combinable with |.
enum XmlFlags : unsigned {
  k_xml_default = 0,
  k_xml_secure = 1u << 0,      // VIR_DOMAIN_XML_SECURE: with passwords
  k_xml_inactive = 1u << 1,    // VIR_DOMAIN_XML_INACTIVE: the persistent definition
  k_xml_migratable = 1u << 3,  // VIR_DOMAIN_XML_MIGRATABLE
};

// define(): what happens to a domain of the same name or UUID.
//   no      refused
//   yes     destroyed and undefined first (with its NVRAM, managed save and
//           snapshot metadata)
//   update  libvirt's redefinition: the definition of the domain with this
//           name and UUID is replaced in place (a running transient domain
//           becomes persistent; a running one gets it on its next start)
enum class Replace { no, yes, update };
enum class StartMode { running, paused };
enum class Nvram { remove, keep };     // undefine(): the domain's UEFI variable store

class Connection {
 public:
  // Connects to `uri` read-write (Errc::unavailable when libvirt cannot).
  [[nodiscard]] static Result<std::shared_ptr<Connection>> open(const std::string& uri);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& uri() const noexcept { return m_uri; }
  // libvirt's driver name: "QEMU", "Test", ...
  const std::string& driver() const noexcept { return m_driver; }
  // The raw connection, for layers that call libvirt APIs of their own
  // (livemig's QEMU monitor). Owned by this object.
  _virConnect* get() const noexcept { return m_conn.get(); }

  // Runs `listener(why)` on the event-loop thread when the connection is lost
  // (at once, on the calling thread, if it already was). Returns an id for
  // remove_close_listener(). A listener must not call libvirt nor this
  // Connection.
  int add_close_listener(std::function<void(const std::string& why)> listener);
  void remove_close_listener(int id);
  // Why the connection was lost; empty while it is up.
  std::string lost() const;

  // --- Domains -----------------------------------------------------------
  [[nodiscard]] Result<VirDomain> lookup(const std::string& name) const;
  [[nodiscard]] Result<VirDomain> lookup_uuid(const std::string& uuid) const;
  // Whether a domain of that name exists (active or defined).
  [[nodiscard]] Result<bool> exists(const std::string& name) const;
  // Every domain, active and defined, sorted by name.
  [[nodiscard]] Result<std::vector<DomainInfo>> list_domains() const;
  [[nodiscard]] Result<DomainInfo> info(const std::string& name) const;
  // virDomainGetXMLDesc with `flags` (XmlFlags).
  [[nodiscard]] Result<std::string> xml(const std::string& name, unsigned flags = k_xml_default) const;
  // Errc::failed_precondition when a domain with this name or (non-empty)
  // UUID exists, naming it.
  [[nodiscard]] Result<void> check_absent(const std::string& name, const std::string& uuid) const;

  // Defines `xml` persistently and returns its name. A domain with the same
  // name or UUID is refused (Errc::failed_precondition) unless `replace`
  // says otherwise (Replace). libvirt validates the XML against its schema
  // (VIR_DOMAIN_DEFINE_VALIDATE).
  [[nodiscard]] Result<std::string> define(const std::string& xml, Replace replace = Replace::no);
  [[nodiscard]] Result<void> start(const std::string& name, StartMode mode = StartMode::running);
  // Creates and starts the transient domain `xml` paused; returns its name.
  [[nodiscard]] Result<std::string> create_transient_paused(const std::string& xml);
  // Errc::aborted when libvirt cannot resume it.
  [[nodiscard]] Result<void> resume(const std::string& name);
  // Stops a domain if it runs. Success: it is absent or not running (a
  // transient one then vanishes); Errc::unavailable when that is not known,
  // e.g. the connection to libvirtd was lost.
  [[nodiscard]] Result<void> destroy(const std::string& name);
  // Removes a persistent definition with its managed save image and snapshot
  // and checkpoint metadata, and its NVRAM file per `nvram`. A running domain
  // keeps running, as a transient one.
  [[nodiscard]] Result<void> undefine(const std::string& name, Nvram nvram = Nvram::remove);
  [[nodiscard]] Result<void> set_autostart(const std::string& name, bool on);
  // The MAC addresses (lower case) of every interface of every domain on this
  // connection, active and defined, read from their persistent and live XML:
  // what a new NIC must not use. libvirt itself does not refuse duplicates.
  [[nodiscard]] Result<std::set<std::string>> macs_in_use() const;

 private:
  Connection() = default;
  [[nodiscard]] Result<DomainInfo> describe(_virDomain* dom) const;
  // Destroys and undefines the domain named `name` and the one with `uuid`.
  [[nodiscard]] Result<void> remove_conflicts(const std::string& name, const std::string& uuid);

  std::shared_ptr<EventLoop> m_loop;  // outlives the connection
  VirConnection m_conn;
  std::string m_uri;
  std::string m_driver;
  std::shared_ptr<CloseWatch> m_watch;  // shared with libvirt's close callback
  bool m_close_registered = false;
};

}  // namespace utsushi::virt
