// Planning clone create (create.h step 1): read-only on every host.
#include <xxhash.h>

#include <fmt/core.h>

#include <algorithm>
#include <set>

#include "plan.h"
#include "utsushi/clone/naming.h"
#include "utsushi/common/log.h"
#include "utsushi/guest/identity_edit.h"

namespace utsushi::clone::detail {
namespace {

const virt::DomainInfo* find_domain(const HostState& host, const std::string& name) {
  for (const virt::DomainInfo& d : host.domains) {
    if (d.name == name) {
      return &d;
    }
  }
  return nullptr;
}

bool made_by_clone(const virt::DomainInfo& d) { return d.metadata && d.metadata->tool == k_tool; }

std::string value_of(const virt::Metadata& m, const std::string& key) {
  auto it = m.values.find(key);
  return it == m.values.end() ? std::string() : it->second;
}

// The volume names of a clone with `disks` golden disks.
std::vector<std::string> volume_names(const std::string& name, std::size_t disks) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < disks; ++i) {
    out.push_back(i == 0 ? name + ".qcow2" : fmt::format("{}-{}.qcow2", name, i + 1));
  }
  return out;
}

// A volume in the way of a new clone: Errc::failed_precondition.
Result<void> check_volumes_free(HostState& host, const std::vector<std::string>& volumes, const std::string& clone) {
  for (const std::string& v : volumes) {
    auto info = virt::volume_info(*host.conn, host.pool_name, v);
    if (info) {
      return fail(Errc::failed_precondition,
                  fmt::format("the volume {} exists in pool {} on {} and no domain made by clone owns it; remove it "
                              "or choose another name than {}",
                              info->path, host.pool_name, host.uri, clone));
    }
    if (info.error().code() != Errc::not_found) {
      UTSUSHI_LOG_DEBUG("checking volume {} on {}: {}", v, host.uri, info.error().message());
    }
  }
  return {};
}

Result<std::optional<guest::AddressConfig>> address_of(const CreateOptions& o, const std::vector<std::string>& range,
                                                        std::size_t index) {
  if (o.dhcp) {
    return guest::AddressConfig{};
  }
  if (!o.ip) {
    return std::nullopt;
  }
  guest::AddressConfig c;
  c.dhcp = false;
  c.address = range[index];
  c.gateway = o.gateway;
  c.dns = o.dns;
  return c;
}

}  // namespace

Result<std::vector<HostState>> connect_hosts(const CreateOptions& options) {
  if (options.uris.empty()) {
    return fail(Errc::invalid_argument, "no libvirt host given (--connect URI)");
  }
  std::vector<HostState> hosts;
  for (const std::string& uri : options.uris) {
    if (std::any_of(hosts.begin(), hosts.end(), [&](const HostState& h) { return h.uri == uri; })) {
      return fail(Errc::invalid_argument, fmt::format("--connect {} is given twice", uri));
    }
    HostState h;
    h.uri = uri;
    h.conn = UTSUSHI_TRY(virt::Connection::open(uri));
    h.domains = UTSUSHI_TRY(h.conn->list_domains());
    if (options.pool_dir.empty()) {
      h.pool_name = "default";
    } else if (auto found = UTSUSHI_TRY(virt::find_dir_pool(*h.conn, options.pool_dir))) {
      h.pool_name = found->name;
    } else {
      h.pool_name = fmt::format("utsushi-clone-{:08x}",
                                static_cast<std::uint32_t>(XXH3_64bits(options.pool_dir.data(), options.pool_dir.size())));
      h.pool_dir = options.pool_dir;
    }
    hosts.push_back(std::move(h));
  }
  return hosts;
}

Result<std::vector<PlannedClone>> plan_clones(const CreateOptions& o, const Golden& golden,
                                              std::vector<HostState>& hosts) {
  std::vector<std::string> names = UTSUSHI_TRY(clone_names(o.names, o.count, o.name_pattern));
  if (o.dhcp && o.ip) {
    return fail(Errc::invalid_argument, "--ip and --dhcp exclude each other");
  }
  if (!o.ip && (!o.gateway.empty() || !o.dns.empty())) {
    return fail(Errc::invalid_argument, "--gateway and --dns go with --ip");
  }
  std::vector<std::string> range;
  if (o.ip) {
    range = UTSUSHI_TRY(address_range(*o.ip, names.size(), o.gateway));
  }
  std::size_t nics = UTSUSHI_TRY(nic_count(o, golden));
  std::set<std::string> macs_in_use;
  for (HostState& h : hosts) {
    std::set<std::string> m = UTSUSHI_TRY(h.conn->macs_in_use());
    macs_in_use.insert(m.begin(), m.end());
  }
  std::vector<PlannedClone> plan;
  for (std::size_t i = 0; i < names.size(); ++i) {
    PlannedClone c;
    c.index = i;
    c.host = i % hosts.size();
    c.record.name = names[i];
    for (std::size_t h = 0; h < hosts.size(); ++h) {
      const virt::DomainInfo* d = find_domain(hosts[h], names[i]);
      if (d == nullptr) {
        continue;
      }
      if (!made_by_clone(*d)) {
        return fail(Errc::failed_precondition,
                    fmt::format("a domain named {} exists on {} and was not made by clone; choose other names",
                                names[i], hosts[h].uri));
      }
      c.host = h;
      bool complete = value_of(*d->metadata, k_state) == "complete";
      c.action = complete ? Action::skip : Action::redo;
      c.old = d->metadata;
      if (complete) {
        c.record = record_from_metadata(*d, hosts[h].uri);
        c.record.state = "existing";
        for (std::string& disk : c.record.disks) {  // volume names -> paths
          if (auto v = virt::volume_info(*hosts[h].conn, value_of(*d->metadata, k_pool), disk)) {
            disk = v->path;
          }
        }
      }
    }
    HostState& host = hosts[c.host];
    c.record.uri = host.uri;
    c.volumes = volume_names(names[i], golden.disks.size());
    if (c.action == Action::create) {
      UTSUSHI_TRY(check_volumes_free(host, c.volumes, names[i]));
    }
    if (c.action != Action::skip) {
      c.record.state = "created";
      c.record.uuid = guest::random_uuid();
      c.record.hostname = UTSUSHI_TRY(expand_pattern(o.hostname_pattern, static_cast<unsigned>(i + 1), names[i]));
      UTSUSHI_TRY(check_hostname(c.record.hostname));
      c.record.machine_id = o.firstboot_machine_id ? std::string() : guest::random_machine_id();
      c.record.macs = new_macs(nics, macs_in_use);
      macs_in_use.insert(c.record.macs.begin(), c.record.macs.end());
      c.params.machine_id = c.record.machine_id;
      c.params.hostname = c.record.hostname;
      c.params.macs = c.record.macs;
      c.params.old_macs = golden.macs;
      c.params.address = UTSUSHI_TRY(address_of(o, range, i));
      c.record.address = !c.params.address ? "" : c.params.address->dhcp ? "dhcp" : c.params.address->address;
    }
    plan.push_back(std::move(c));
  }
  return plan;
}

}  // namespace utsushi::clone::detail
