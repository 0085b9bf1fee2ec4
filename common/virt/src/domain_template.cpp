// instantiate_template (domain_xml.h): a template domain's definition with a
// new identity, the edits virt-clone makes (virt-manager's virtinst/cloner.py)
// done on the XML alone.
#include <fmt/core.h>
#include <pugixml.hpp>

#include <set>
#include <vector>

#include "utsushi/virt/domain_xml.h"
#include "xml_util.h"

namespace utsushi::virt {

namespace {

Result<void> check_edits(const TemplateEdits& e) {
  if (e.name.empty()) {
    return fail(Errc::invalid_argument, "template: the new domain has no name");
  }
  if (!e.uuid.empty() && !xml::is_uuid(e.uuid)) {
    return fail(Errc::invalid_argument, fmt::format("template: '{}' is not a UUID", e.uuid));
  }
  for (const auto& mac : e.macs.value_or(std::vector<std::string>{})) {
    if (!xml::is_mac(mac)) {
      return fail(Errc::invalid_argument, fmt::format("template: '{}' is not a MAC address", mac));
    }
  }
  if (e.vcpus && *e.vcpus == 0) {
    return fail(Errc::invalid_argument, "template: 0 vCPUs");
  }
  if (e.memory_bytes && *e.memory_bytes < 1024) {
    return fail(Errc::invalid_argument, "template: less than 1 KiB of memory");
  }
  return {};
}

void set_identity(pugi::xml_node root, const TemplateEdits& e) {
  root.remove_attribute("id");  // the runtime id of a running template
  xml::only_child(root, "name").text() = e.name.c_str();
  if (e.uuid.empty()) {
    root.remove_child("uuid");
  } else {
    xml::only_child(root, "uuid").text() = e.uuid.c_str();
  }
  if (auto genid = root.child("genid"); genid) {
    genid.text() = "";  // empty: libvirt generates a new VM generation ID
  }
  // libvirt refuses an SMBIOS system UUID other than the domain's.
  for (auto sysinfo : root.children("sysinfo")) {
    for (auto entry = sysinfo.child("system").child("entry"); entry;) {
      auto next = entry.next_sibling("entry");
      if (std::string_view(entry.attribute("name").value()) == "uuid") {
        entry.parent().remove_child(entry);
      }
      entry = next;
    }
  }
  while (root.child("seclabel")) {
    root.remove_child("seclabel");
  }
  if (auto nvram = root.child("os").child("nvram"); nvram) {
    nvram.text() = "";  // libvirt makes NAME_VARS.fd from the template it names
    nvram.remove_attribute("type");
    nvram.remove_child("source");
  }
}

void set_resources(pugi::xml_node root, const TemplateEdits& e) {
  if (e.memory_bytes) {
    std::string kib = std::to_string((*e.memory_bytes + 1023) / 1024);
    for (const char* name : {"memory", "currentMemory"}) {
      auto m = xml::only_child(root, name);
      xml::set_attr(m, "unit", "KiB");
      m.text() = kib.c_str();
    }
    root.remove_child("maxMemory");  // memory hotplug slots sized for the old amount
  }
  if (e.vcpus) {
    auto v = xml::only_child(root, "vcpu");
    v.remove_attribute("current");
    v.text() = std::to_string(*e.vcpus).c_str();
    root.remove_child("vcpus");  // per-vCPU states of the old count
    if (auto topology = root.child("cpu").child("topology"); topology) {
      unsigned product = topology.attribute("sockets").as_uint(1) * topology.attribute("dies").as_uint(1) *
                         topology.attribute("cores").as_uint(1) * topology.attribute("threads").as_uint(1);
      if (product != *e.vcpus) {
        root.child("cpu").remove_child(topology);
      }
    }
  }
}

Result<void> set_macs(pugi::xml_node devices, const TemplateEdits& e) {
  std::vector<pugi::xml_node> nics;
  for (auto nic : devices.children("interface")) {
    nics.push_back(nic);
  }
  if (e.macs && e.macs->size() != nics.size()) {
    return fail(Errc::invalid_argument, fmt::format("template: {} MAC addresses for {} interfaces",
                                                    e.macs->size(), nics.size()));
  }
  for (std::size_t i = 0; i < nics.size(); ++i) {
    nics[i].remove_child("target");  // vnetN of the running template
    if (e.macs) {
      auto mac = xml::only_child(nics[i], "mac");
      xml::set_attr(mac, "address", xml::lower((*e.macs)[i]).c_str());
    } else {
      nics[i].remove_child("mac");
    }
  }
  return {};
}

bool writable_disk(const pugi::xml_node& disk) {
  std::string_view device = disk.attribute("device").as_string("disk");
  return device == "disk" && !disk.child("readonly") && !disk.child("shareable");
}

Result<void> set_disks(pugi::xml_node devices, const TemplateEdits& e) {
  std::set<std::string> named;
  for (const auto& d : e.disks) {
    if (!named.insert(d.target).second) {
      return fail(Errc::invalid_argument, fmt::format("template: disk {} named twice", d.target));
    }
    if (d.path.empty() || d.format.empty()) {
      return fail(Errc::invalid_argument, fmt::format("template: disk {} needs a path and a format", d.target));
    }
  }
  std::set<std::string> replaced;
  for (auto disk : devices.children("disk")) {
    std::string target = disk.child("target").attribute("dev").value();
    const DiskSource* edit = nullptr;
    for (const auto& d : e.disks) {
      edit = d.target == target ? &d : edit;
    }
    if (!edit) {
      if (writable_disk(disk)) {
        return fail(Errc::invalid_argument, fmt::format("template: writable disk {} has no new source", target));
      }
      continue;
    }
    replaced.insert(target);
    xml::set_attr(disk, "type", "file");
    disk.remove_child("source");
    disk.remove_child("backingStore");
    auto source = disk.insert_child_before("source", disk.child("target"));
    source.append_attribute("file") = edit->path.c_str();
    auto driver = xml::only_child(disk, "driver");
    if (!driver.attribute("name")) {
      driver.append_attribute("name") = "qemu";
    }
    xml::set_attr(driver, "type", edit->format.c_str());
  }
  for (const auto& d : e.disks) {
    if (!replaced.contains(d.target)) {
      return fail(Errc::invalid_argument, fmt::format("template: it has no disk {}", d.target));
    }
  }
  return {};
}

// Replaces every occurrence of `from` in `text` with `to`.
std::string renamed(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); !from.empty() && pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

// Graphics on automatic ports; per-domain sockets and log files not shared.
void set_host_resources(pugi::xml_node devices, const std::string& old_name, const std::string& new_name) {
  for (auto g : devices.children("graphics")) {
    for (const char* attr : {"port", "tlsPort", "websocket"}) {
      g.remove_attribute(attr);
    }
    xml::set_attr(g, "autoport", "yes");
  }
  for (auto dev : devices.children()) {
    std::string_view kind = dev.name();
    if (kind != "serial" && kind != "console" && kind != "channel" && kind != "parallel") {
      continue;
    }
    auto source = dev.child("source");
    bool unix_socket = std::string_view(dev.attribute("type").value()) == "unix";
    if (unix_socket && kind == "channel") {
      source.remove_attribute("path");  // libvirt makes a channel's socket per domain
    } else if (auto path = source.attribute("path"); path) {
      std::string p = renamed(path.value(), old_name, new_name);
      if (unix_socket && p == path.value()) {  // a socket the template's name is not in: one per clone
        auto slash = p.rfind('/');
        p.insert(slash == std::string::npos ? 0 : slash + 1, new_name + "-");
      }
      path = p.c_str();
    }
    if (auto file = dev.child("log").attribute("file"); file) {
      file = renamed(file.value(), old_name, new_name).c_str();
    }
  }
}

}  // namespace

Result<std::string> instantiate_template(std::string_view text, const TemplateEdits& edits) {
  UTSUSHI_TRY(check_edits(edits));
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(xml::parse_domain(doc, text));
  std::string old_name = root.child_value("name");
  if (old_name.empty()) {
    return fail(Errc::invalid_argument, "domain XML: no <name>");
  }
  set_identity(root, edits);
  set_resources(root, edits);
  auto devices = root.child("devices");
  UTSUSHI_TRY(set_macs(devices, edits));
  UTSUSHI_TRY(set_disks(devices, edits));
  set_host_resources(devices, old_name, edits.name);
  if (edits.metadata) {
    if (auto old = xml::find_metadata(root); old) {
      old.parent().remove_child(old);
    }
    auto metadata = root.child("metadata");
    if (!metadata) {
      metadata = root.insert_child_after("metadata", root.child("uuid") ? root.child("uuid") : root.child("name"));
    }
    UTSUSHI_TRY(xml::append_metadata(metadata, *edits.metadata));
  }
  return xml::save(doc);
}

}  // namespace utsushi::virt
