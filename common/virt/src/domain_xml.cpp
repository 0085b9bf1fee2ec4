#include "utsushi/virt/domain_xml.h"

#include <fmt/core.h>
#include <pugixml.hpp>

#include <vector>

#include "xml_util.h"

namespace utsushi::virt {

using xml::local_name;
using xml::namespace_of;
using xml::parse_domain;

namespace {

// The prefix bound to the QEMU namespace on the root, or "" when none is.
std::string qemu_prefix(const pugi::xml_node& root) {
  for (auto a : root.attributes()) {
    std::string_view n = a.name();
    if (n.starts_with("xmlns:") && a.value() == k_qemu_xml_namespace) {
      return std::string(n.substr(6));
    }
  }
  return {};
}

// Why `element` may not be started by a receiver; empty when it may.
std::string refusal(const pugi::xml_node& element) {
  std::string_view ns = namespace_of(element);
  std::string_view local = local_name(element);
  if (ns == k_qemu_xml_namespace) {
    if ((local == "commandline" || local == "capabilities") && !element.first_child()) {
      return {};
    }
    if (local == "deprecation") {
      return {};
    }
    return "QEMU pass-through elements (arbitrary QEMU arguments, capabilities or properties) are not accepted";
  }
  if (!ns.empty()) {
    return {};  // another driver's namespace: the QEMU driver ignores it
  }
  if (local == "hostdev") {
    return "host devices are not handed to a received guest";
  }
  if (local == "interface" && std::string_view(element.attribute("type").value()) == "hostdev") {
    return "host network devices are not handed to a received guest";
  }
  if (local == "seclabel") {
    std::string_view type = element.attribute("type").value();
    std::string_view model = element.attribute("model").value();
    bool on_domain = std::string_view(element.parent().name()) == "domain";
    if (type == "none" && model != "none") {
      return "it turns confinement off";
    }
    if (type == "static") {
      return "it chooses the QEMU process's own security label";
    }
    if (std::string_view(element.attribute("relabel").value()) == "no") {
      return "it turns relabelling off";
    }
    if (element.child("baselabel")) {
      return "it chooses the base security label";
    }
    if (!on_domain && element.child("label")) {
      return "it chooses a device's security label";
    }
  }
  return {};
}

}  // namespace

Result<void> check_incoming_domain(std::string_view text) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(parse_domain(doc, text));
  std::string name = root.child_value("name");
  std::vector<pugi::xml_node> pending{root};
  while (!pending.empty()) {
    auto element = pending.back();
    pending.pop_back();
    if (auto why = refusal(element); !why.empty()) {
      std::string what = element.name();
      if (auto type = element.attribute("type"); type) {
        what += fmt::format(" type='{}'", type.value());
      }
      return fail(Errc::permission_denied,
                  fmt::format("domain {}: refusing <{}>: {}", name.empty() ? "?" : name, what, why));
    }
    for (auto child : element.children()) {
      if (child.type() == pugi::node_element) {
        pending.push_back(child);
      }
    }
  }
  return {};
}

Result<std::vector<std::string>> graphics_with_password(std::string_view text) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(parse_domain(doc, text));
  std::vector<std::string> types;
  for (auto g : root.child("devices").children("graphics")) {
    if (g.attribute("passwd")) {
      types.emplace_back(g.attribute("type").value());
    }
  }
  return types;
}

Result<DomainIdentity> domain_identity(std::string_view text) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(parse_domain(doc, text));
  DomainIdentity id{root.child_value("name"), root.child_value("uuid")};
  if (id.name.empty()) {
    return fail(Errc::invalid_argument, "domain XML: no <name>");
  }
  return id;
}

Result<std::string> incoming_domain_xml(std::string_view text) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(parse_domain(doc, text));
  std::string prefix = qemu_prefix(root);
  if (prefix.empty()) {
    prefix = "qemu";
    for (int i = 1; root.attribute(("xmlns:" + prefix).c_str()); ++i) {
      prefix = fmt::format("qemu{}", i);  // `qemu` is taken by another namespace
    }
    root.append_attribute(("xmlns:" + prefix).c_str()) = std::string(k_qemu_xml_namespace).c_str();
  }
  const std::string cmdline_name = prefix + ":commandline";
  const std::string arg_name = prefix + ":arg";
  auto cmdline = root.child(cmdline_name.c_str());
  if (!cmdline) {
    cmdline = root.append_child(cmdline_name.c_str());
  }
  for (auto arg : cmdline.children(arg_name.c_str())) {
    if (std::string_view(arg.attribute("value").value()) == "-incoming") {
      return fail(Errc::not_supported, "domain XML: its QEMU command line already has -incoming");
    }
  }
  cmdline.append_child(arg_name.c_str()).append_attribute("value") = "-incoming";
  cmdline.append_child(arg_name.c_str()).append_attribute("value") = "defer";
  return xml::save(doc);
}

Result<std::string> without_incoming_defer(std::string_view text) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(parse_domain(doc, text));
  std::string prefix = qemu_prefix(root);
  if (!prefix.empty()) {
    const std::string arg_name = prefix + ":arg";
    if (auto cmdline = root.child((prefix + ":commandline").c_str()); cmdline) {
      for (auto arg = cmdline.child(arg_name.c_str()); arg;) {
        auto next = arg.next_sibling(arg_name.c_str());
        if (std::string_view(arg.attribute("value").value()) == "-incoming" && next &&
            std::string_view(next.attribute("value").value()) == "defer") {
          auto after = next.next_sibling(arg_name.c_str());
          cmdline.remove_child(next);
          cmdline.remove_child(arg);
          arg = after;
          continue;
        }
        arg = next;
      }
      if (!cmdline.first_child()) {
        root.remove_child(cmdline);
      }
    }
  }
  return xml::save(doc);
}

Result<std::string> relocated_disks_xml(std::string_view text, const std::vector<DiskMove>& moves) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(parse_domain(doc, text));
  for (const auto& m : moves) {
    std::vector<pugi::xml_node> hits;
    for (auto disk : root.child("devices").children("disk")) {
      auto source = disk.child("source");
      if (std::string_view(disk.attribute("type").value()) == "file" && source &&
          source.attribute("file").value() == m.from) {
        hits.push_back(source);
      }
    }
    if (hits.size() != 1 || m.to.empty()) {
      return fail(Errc::invalid_argument, fmt::format("the domain has {} file disks on {}, not one to move to '{}'",
                                                      hits.size(), m.from, m.to));
    }
    xml::set_attr(hits.front(), "file", m.to.c_str());
  }
  return xml::save(doc);
}

Result<std::vector<std::string>> interface_macs(std::string_view text) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(parse_domain(doc, text));
  std::vector<std::string> macs;
  for (auto nic : root.child("devices").children("interface")) {
    if (auto mac = nic.child("mac").attribute("address"); mac) {
      macs.push_back(xml::lower(mac.value()));
    }
  }
  return macs;
}

Result<Metadata> decode_metadata(std::string_view element_xml) {
  pugi::xml_document doc;
  if (auto r = doc.load_buffer(element_xml.data(), element_xml.size()); !r) {
    return fail(Errc::invalid_argument, fmt::format("utsushi metadata: {} at offset {}", r.description(), r.offset));
  }
  return xml::read_metadata(doc.document_element());
}

}  // namespace utsushi::virt
