// p2v convert: the libvirt domain of a conversion, through utsushi_virt.
#include <fmt/core.h>

#include "utsushi/common/log.h"
#include "utsushi/p2v/convert.h"
#include "utsushi/virt/connection.h"
#include "utsushi/virt/domain_spec.h"

namespace utsushi::p2v {

Result<void> check_domain_name(const std::string& name, const DomainOptions& o) {
  auto conn = UTSUSHI_TRY(virt::Connection::open(o.uri));
  if (!o.replace && UTSUSHI_TRY(conn->exists(name))) {
    return fail(Errc::failed_precondition,
                fmt::format("a domain named {} exists on {} (give --replace to replace it, or --name)", name, o.uri));
  }
  return {};
}

Result<std::string> domain_xml(const Conversion& c, const DomainOptions& o) {
  virt::ProfileDomainOptions d;
  d.name = c.name;
  d.accel = o.accel;
  for (const ConvertedDisk& disk : c.disks) {
    virt::DiskSpec spec;
    spec.path = disk.path;
    spec.format = disk.format;
    spec.bus = c.bus;
    d.disks.push_back(std::move(spec));
  }
  d.nic_kind = o.nic_kind;
  d.nic_source = o.nic_source;
  d.nic_model = c.nic;
  d.firmware = c.firmware == guest::Firmware::uefi ? virt::Firmware::uefi : virt::Firmware::bios;
  virt::Metadata meta;
  meta.tool = "p2v";
  for (std::size_t i = 0; i < c.disks.size(); ++i) {
    meta.values[fmt::format("source-{}", i)] = c.disks[i].source;
  }
  d.metadata = std::move(meta);
  virt::DomainSpec spec = UTSUSHI_TRY(virt::from_profile(c.profile, d));
  return virt::encode_domain(spec);
}

Result<DefinedDomain> define_domain(const Conversion& c, const DomainOptions& o) {
  DefinedDomain out;
  out.uri = o.uri;
  out.xml = UTSUSHI_TRY(domain_xml(c, o));
  auto conn = UTSUSHI_TRY(virt::Connection::open(o.uri));
  out.name = UTSUSHI_TRY(conn->define(out.xml, o.replace ? virt::Replace::yes : virt::Replace::no));
  auto info = conn->info(out.name);
  if (info) {
    out.uuid = info->uuid;
  }
  if (o.start) {
    if (auto started = conn->start(out.name); !started) {
      // Nothing half-made: the domain this call defined goes again.
      if (auto undone = conn->undefine(out.name); !undone) {
        UTSUSHI_LOG_WARN("domain {}: undefine after a failed start: {}", out.name, undone.error().message());
      }
      return std::unexpected(std::move(started).error().with_context("starting domain " + out.name));
    }
    out.started = true;
  }
  return out;
}

}  // namespace utsushi::p2v
