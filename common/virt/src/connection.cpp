#include "utsushi/virt/connection.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

#include "event_loop.h"
#include "utsushi/virt/libvirt_error.h"
#include "utsushi/common/log.h"
#include "utsushi/virt/domain_xml.h"

namespace utsushi::virt {

// The connection's liveness, shared with libvirt's close callback (which
// owns a reference, released by its free callback, so a late callback still
// finds live memory).
struct CloseWatch {
  std::string uri;
  mutable std::mutex mutex;
  std::string lost;
  int next_id = 0;
  std::map<int, std::function<void(const std::string&)>> listeners;
};

namespace {

const char* close_reason(int reason) {
  switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_ERROR: return "I/O error";
    case VIR_CONNECT_CLOSE_REASON_EOF: return "libvirtd closed the connection";
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE: return "libvirtd stopped answering keepalives";
    default: return "closed";
  }
}

// Runs on the event-loop thread when the connection dies.
void on_connection_closed(virConnectPtr, int reason, void* opaque) {
  auto& watch = **static_cast<std::shared_ptr<CloseWatch>*>(opaque);
  std::string why = fmt::format("the libvirt connection to {} was lost ({})", watch.uri, close_reason(reason));
  UTSUSHI_LOG_ERROR("{}", why);
  std::lock_guard lock(watch.mutex);
  watch.lost = why;
  for (auto& [id, listener] : watch.listeners) {
    listener(why);
  }
}

void free_close_watch(void* opaque) { delete static_cast<std::shared_ptr<CloseWatch>*>(opaque); }

DomainState state_of(int state) {
  switch (state) {
    case VIR_DOMAIN_RUNNING: return DomainState::running;
    case VIR_DOMAIN_BLOCKED: return DomainState::blocked;
    case VIR_DOMAIN_PAUSED: return DomainState::paused;
    case VIR_DOMAIN_SHUTDOWN: return DomainState::shutting_down;
    case VIR_DOMAIN_SHUTOFF: return DomainState::shut_off;
    case VIR_DOMAIN_CRASHED: return DomainState::crashed;
    case VIR_DOMAIN_PMSUSPENDED: return DomainState::pm_suspended;
    default: return DomainState::unknown;
  }
}

// A lookup that failed: not_found when libvirt has no such domain.
std::unexpected<Error> lookup_failure(const std::string& what, const std::string& uri) {
  return fail(last_error_is(VIR_ERR_NO_DOMAIN) ? Errc::not_found : Errc::unavailable,
              fmt::format("domain {} on {}: {}", what, uri, last_error()));
}

std::string domain_name(virDomainPtr d) {
  const char* n = virDomainGetName(d);
  return n ? n : "?";
}

}  // namespace

std::string_view domain_state_name(DomainState state) noexcept {
  switch (state) {
    case DomainState::running: return "running";
    case DomainState::blocked: return "blocked";
    case DomainState::paused: return "paused";
    case DomainState::shutting_down: return "shutting down";
    case DomainState::shut_off: return "shut off";
    case DomainState::crashed: return "crashed";
    case DomainState::pm_suspended: return "pmsuspended";
    case DomainState::unknown: break;
  }
  return "unknown";
}

Result<std::shared_ptr<Connection>> Connection::open(const std::string& uri) {
  std::shared_ptr<Connection> c(new Connection());
  c->m_loop = UTSUSHI_TRY(EventLoop::acquire());
  c->m_conn = VirConnection(virConnectOpen(uri.c_str()));
  if (!c->m_conn) {
    return fail(Errc::unavailable, fmt::format("cannot connect to libvirt at {}: {}", uri, last_error()));
  }
  c->m_uri = uri;
  const char* type = virConnectGetType(c->m_conn.get());
  c->m_driver = type ? type : "?";
  // A libvirtd that hangs (rather than dies) is noticed within ~20 s instead
  // of never; drivers without keepalive (test:///) answer 1 or -1: fine.
  (void)virConnectSetKeepAlive(c->m_conn.get(), 5, 3);
  c->m_watch = std::make_shared<CloseWatch>();
  c->m_watch->uri = uri;
  auto* opaque = new std::shared_ptr<CloseWatch>(c->m_watch);
  if (virConnectRegisterCloseCallback(c->m_conn.get(), on_connection_closed, opaque, free_close_watch) < 0) {
    delete opaque;  // drivers without a daemon (test:///) cannot lose it
  } else {
    c->m_close_registered = true;
  }
  return c;
}

Connection::~Connection() {
  // On a connection that is already gone this fails at once: nothing waits.
  if (m_close_registered) {
    virConnectUnregisterCloseCallback(m_conn.get(), on_connection_closed);
  }
}

int Connection::add_close_listener(std::function<void(const std::string& why)> listener) {
  std::unique_lock lock(m_watch->mutex);
  int id = m_watch->next_id++;
  if (!m_watch->lost.empty()) {
    std::string why = m_watch->lost;
    lock.unlock();
    listener(why);
    return id;
  }
  m_watch->listeners.emplace(id, std::move(listener));
  return id;
}

void Connection::remove_close_listener(int id) {
  std::lock_guard lock(m_watch->mutex);
  m_watch->listeners.erase(id);
}

std::string Connection::lost() const {
  std::lock_guard lock(m_watch->mutex);
  return m_watch->lost;
}

Result<VirDomain> Connection::lookup(const std::string& name) const {
  VirDomain d(virDomainLookupByName(m_conn.get(), name.c_str()));
  if (!d) {
    return lookup_failure(name, m_uri);
  }
  return d;
}

Result<VirDomain> Connection::lookup_uuid(const std::string& uuid) const {
  VirDomain d(virDomainLookupByUUIDString(m_conn.get(), uuid.c_str()));
  if (!d) {
    return lookup_failure("with UUID " + uuid, m_uri);
  }
  return d;
}

Result<bool> Connection::exists(const std::string& name) const {
  auto d = lookup(name);
  if (!d && d.error().code() == Errc::not_found) {
    return false;
  }
  UTSUSHI_TRY(std::move(d));
  return true;
}

Result<DomainInfo> Connection::describe(virDomainPtr d) const {
  DomainInfo info;
  info.name = domain_name(d);
  char uuid[VIR_UUID_STRING_BUFLEN] = {};
  int state = 0;
  int reason = 0;
  int active = virDomainIsActive(d);
  int persistent = virDomainIsPersistent(d);
  if (virDomainGetUUIDString(d, uuid) < 0 || virDomainGetState(d, &state, &reason, 0) < 0 || active < 0 ||
      persistent < 0) {
    return lookup_failure(info.name, m_uri);
  }
  info.uuid = uuid;
  info.state = state_of(state);
  info.active = active == 1;
  info.persistent = persistent == 1;
  std::string ns(k_metadata_namespace);
  if (char* text = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, ns.c_str(), 0); text) {
    auto m = decode_metadata(text);
    std::free(text);
    if (m) {
      info.metadata = std::move(*m);
    } else {
      // Not made by utsushi as far as anyone can tell: treated as foreign.
      UTSUSHI_LOG_DEBUG("domain {} on {}: ignoring its utsushi metadata: {}", info.name, m_uri, m.error().message());
    }
  } else if (!last_error_is(VIR_ERR_NO_DOMAIN_METADATA)) {
    return lookup_failure(info.name, m_uri);
  }
  return info;
}

Result<std::vector<DomainInfo>> Connection::list_domains() const {
  virDomainPtr* list = nullptr;
  int n = virConnectListAllDomains(m_conn.get(), &list, 0);
  if (n < 0) {
    return fail(Errc::unavailable, fmt::format("listing the domains of {}: {}", m_uri, last_error()));
  }
  std::vector<VirDomain> doms;
  for (int i = 0; i < n; ++i) {
    doms.emplace_back(list[i]);
  }
  std::free(list);
  std::vector<DomainInfo> out;
  for (const auto& d : doms) {
    auto info = describe(d.get());
    if (!info && info.error().code() == Errc::not_found) {
      continue;  // a transient domain that stopped since the listing
    }
    out.push_back(UTSUSHI_TRY(std::move(info)));
  }
  std::sort(out.begin(), out.end(), [](const DomainInfo& a, const DomainInfo& b) { return a.name < b.name; });
  return out;
}

Result<DomainInfo> Connection::info(const std::string& name) const {
  auto d = UTSUSHI_TRY(lookup(name));
  return describe(d.get());
}

Result<std::string> Connection::xml(const std::string& name, unsigned flags) const {
  auto d = UTSUSHI_TRY(lookup(name));
  char* text = virDomainGetXMLDesc(d.get(), flags);
  if (!text) {
    return fail(last_error_is(VIR_ERR_NO_DOMAIN) ? Errc::not_found : Errc::unavailable,
                fmt::format("XML of domain {} on {}: {}", name, m_uri, last_error()));
  }
  std::string out(text);
  std::free(text);
  return out;
}

Result<void> Connection::check_absent(const std::string& name, const std::string& uuid) const {
  if (UTSUSHI_TRY(exists(name))) {
    return fail(Errc::failed_precondition, fmt::format("a domain named {} already exists on {}", name, m_uri));
  }
  if (!uuid.empty()) {
    auto d = lookup_uuid(uuid);
    if (d) {
      return fail(Errc::failed_precondition, fmt::format("a domain with UUID {} ({}) already exists on {}", uuid,
                                                         domain_name(d->get()), m_uri));
    }
    if (d.error().code() != Errc::not_found) {
      return std::unexpected(std::move(d).error());
    }
  }
  return {};
}

Result<void> Connection::remove_conflicts(const std::string& name, const std::string& uuid) {
  // The domain of that name and the one of that UUID may be two.
  std::vector<std::string> old;
  if (UTSUSHI_TRY(exists(name))) {
    old.push_back(name);
  }
  if (!uuid.empty()) {
    if (auto d = lookup_uuid(uuid); d && domain_name(d->get()) != name) {
      old.push_back(domain_name(d->get()));
    } else if (!d && d.error().code() != Errc::not_found) {
      return std::unexpected(std::move(d).error());
    }
  }
  for (const auto& victim : old) {
    UTSUSHI_TRY_CTX(destroy(victim), "replacing " + victim);
    if (auto r = undefine(victim, Nvram::remove); !r && r.error().code() != Errc::not_found) {
      return std::unexpected(std::move(r).error().with_context("replacing " + victim));
    }
  }
  return {};
}

Result<std::string> Connection::define(const std::string& xml, Replace replace) {
  auto id = UTSUSHI_TRY(domain_identity(xml));
  if (replace == Replace::no) {
    UTSUSHI_TRY(check_absent(id.name, id.uuid));
  } else if (replace == Replace::yes) {
    UTSUSHI_TRY(remove_conflicts(id.name, id.uuid));
  }
  VirDomain d(virDomainDefineXMLFlags(m_conn.get(), xml.c_str(), VIR_DOMAIN_DEFINE_VALIDATE));
  if (!d) {
    return fail(Errc::failed_precondition, fmt::format("defining domain {} on {}: {}", id.name, m_uri, last_error()));
  }
  return domain_name(d.get());
}

Result<void> Connection::start(const std::string& name, StartMode mode) {
  auto d = UTSUSHI_TRY(lookup(name));
  unsigned flags = mode == StartMode::paused ? VIR_DOMAIN_START_PAUSED : 0;
  if (virDomainCreateWithFlags(d.get(), flags) < 0) {
    return fail(Errc::failed_precondition, fmt::format("starting domain {} on {}: {}", name, m_uri, last_error()));
  }
  return {};
}

Result<std::string> Connection::create_transient_paused(const std::string& xml) {
  auto id = UTSUSHI_TRY(domain_identity(xml));
  VirDomain d(virDomainCreateXML(m_conn.get(), xml.c_str(), VIR_DOMAIN_START_PAUSED));
  if (!d) {
    return fail(Errc::failed_precondition, fmt::format("starting domain {} on {}: {}", id.name, m_uri, last_error()));
  }
  return domain_name(d.get());
}

Result<void> Connection::resume(const std::string& name) {
  auto d = UTSUSHI_TRY(lookup(name));
  if (virDomainResume(d.get()) < 0) {
    return fail(Errc::aborted, fmt::format("resuming domain {} on {}: {}", name, m_uri, last_error()));
  }
  return {};
}

Result<void> Connection::destroy(const std::string& name) {
  auto d = lookup(name);
  if (!d && d.error().code() == Errc::not_found) {
    return {};  // QEMU exited and libvirt forgot the transient domain
  }
  if (!d) {
    return fail(Errc::unavailable, fmt::format("domain {} may be left on {}: {}", name, m_uri, last_error()));
  }
  int active = virDomainIsActive(d->get());
  if (active < 0 && last_error_is(VIR_ERR_NO_DOMAIN)) {
    return {};  // forgotten since the lookup
  }
  if (active < 0) {
    return fail(Errc::unavailable,
                fmt::format("domain {} may be left on {}: whether it runs is unknown: {}", name, m_uri, last_error()));
  }
  // Not running any more, or forgotten meanwhile (its QEMU exited): gone.
  if (active == 1 && virDomainDestroy(d->get()) < 0 && !last_error_is(VIR_ERR_OPERATION_INVALID) &&
      !last_error_is(VIR_ERR_NO_DOMAIN)) {
    return fail(Errc::unavailable, fmt::format("could not destroy domain {} on {}: {}", name, m_uri, last_error()));
  }
  return {};
}

Result<void> Connection::undefine(const std::string& name, Nvram nvram) {
  auto d = UTSUSHI_TRY(lookup(name));
  unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                   VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA |
                   (nvram == Nvram::remove ? VIR_DOMAIN_UNDEFINE_NVRAM : VIR_DOMAIN_UNDEFINE_KEEP_NVRAM);
  // Drivers without NVRAM or checkpoints (test:///) refuse those flags.
  if (virDomainUndefineFlags(d.get(), flags) < 0 &&
      (!last_error_is(VIR_ERR_INVALID_ARG) ||
       virDomainUndefineFlags(d.get(), VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0)) {
    return fail(last_error_is(VIR_ERR_NO_DOMAIN) ? Errc::not_found : Errc::unavailable,
                fmt::format("undefining domain {} on {}: {}", name, m_uri, last_error()));
  }
  return {};
}

Result<void> Connection::set_autostart(const std::string& name, bool on) {
  auto d = UTSUSHI_TRY(lookup(name));
  if (virDomainSetAutostart(d.get(), on ? 1 : 0) < 0) {
    return fail(Errc::unavailable,
                fmt::format("turning autostart {} for domain {} on {}: {}", on ? "on" : "off", name, m_uri, last_error()));
  }
  return {};
}

Result<std::set<std::string>> Connection::macs_in_use() const {
  std::set<std::string> macs;
  for (const auto& d : UTSUSHI_TRY(list_domains())) {
    // The persistent definition and the running one may differ (hotplug).
    std::vector<unsigned> variants;
    if (d.persistent) {
      variants.push_back(k_xml_inactive);
    }
    if (d.active) {
      variants.push_back(k_xml_default);
    }
    for (unsigned flags : variants) {
      auto text = xml(d.name, flags);
      if (!text && text.error().code() == Errc::not_found) {
        break;  // gone since the listing
      }
      auto definition = UTSUSHI_TRY(std::move(text));
      for (auto& mac : UTSUSHI_TRY(interface_macs(definition))) {
        macs.insert(std::move(mac));
      }
    }
  }
  return macs;
}

}  // namespace utsushi::virt
