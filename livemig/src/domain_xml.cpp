#include "utsushi/livemig/domain_xml.h"

#include <fmt/core.h>
#include <pugixml.hpp>

#include <sstream>

namespace utsushi::livemig {

namespace {

Result<pugi::xml_node> parse_domain(pugi::xml_document& doc, std::string_view xml) {
  auto r = doc.load_buffer(xml.data(), xml.size());
  if (!r) {
    return fail(Errc::invalid_argument, fmt::format("domain XML: {} at offset {}", r.description(), r.offset));
  }
  auto root = doc.document_element();
  if (std::string_view(root.name()) != "domain") {
    return fail(Errc::invalid_argument, fmt::format("domain XML: root element is <{}>, not <domain>", root.name()));
  }
  return root;
}

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

}  // namespace

Result<DomainIdentity> domain_identity(std::string_view xml) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(parse_domain(doc, xml));
  DomainIdentity id{root.child_value("name"), root.child_value("uuid")};
  if (id.name.empty()) {
    return fail(Errc::invalid_argument, "domain XML: no <name>");
  }
  return id;
}

Result<std::string> incoming_domain_xml(std::string_view xml) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(parse_domain(doc, xml));
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
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_default | pugi::format_no_declaration);
  return out.str();
}

Result<std::string> without_incoming_defer(std::string_view xml) {
  pugi::xml_document doc;
  auto root = UTSUSHI_TRY(parse_domain(doc, xml));
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
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_default | pugi::format_no_declaration);
  return out.str();
}

}  // namespace utsushi::livemig
