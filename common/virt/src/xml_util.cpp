#include "xml_util.h"

#include <fmt/core.h>

#include <cctype>
#include <charconv>
#include <sstream>

namespace utsushi::virt::xml {

Result<pugi::xml_node> parse_domain(pugi::xml_document& doc, std::string_view text) {
  auto r = doc.load_buffer(text.data(), text.size());
  if (!r) {
    return fail(Errc::invalid_argument, fmt::format("domain XML: {} at offset {}", r.description(), r.offset));
  }
  auto root = doc.document_element();
  if (std::string_view(root.name()) != "domain") {
    return fail(Errc::invalid_argument, fmt::format("domain XML: root element is <{}>, not <domain>", root.name()));
  }
  return root;
}

std::string save(const pugi::xml_document& doc) {
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_default | pugi::format_no_declaration);
  return out.str();
}

std::string_view namespace_of(const pugi::xml_node& element) {
  std::string_view name = element.name();
  auto colon = name.find(':');
  std::string attr = colon == std::string_view::npos ? std::string("xmlns")
                                                     : "xmlns:" + std::string(name.substr(0, colon));
  for (auto n = element; n && n.type() == pugi::node_element; n = n.parent()) {
    if (auto a = n.attribute(attr.c_str()); a) {
      return a.value();
    }
  }
  return {};
}

std::string_view local_name(const pugi::xml_node& element) {
  std::string_view name = element.name();
  auto colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

pugi::xml_node only_child(pugi::xml_node parent, const char* name) {
  auto first = parent.child(name);
  if (!first) {
    return parent.append_child(name);
  }
  for (auto extra = first.next_sibling(name); extra;) {
    auto next = extra.next_sibling(name);
    parent.remove_child(extra);
    extra = next;
  }
  return first;
}

void set_attr(pugi::xml_node node, const char* name, const char* value) {
  if (auto a = node.attribute(name); a) {
    a.set_value(value);
  } else {
    node.append_attribute(name).set_value(value);
  }
}

Result<void> append_metadata(pugi::xml_node metadata, const Metadata& m) {
  if (m.tool.empty()) {
    return fail(Errc::invalid_argument, "utsushi metadata: the tool is empty");
  }
  const std::string prefix(k_metadata_prefix);
  auto root = metadata.append_child((prefix + ":domain").c_str());
  root.append_attribute(("xmlns:" + prefix).c_str()) = std::string(k_metadata_namespace).c_str();
  root.append_child((prefix + ":tool").c_str()).text() = m.tool.c_str();
  for (const auto& [key, value] : m.values) {
    auto e = root.append_child((prefix + ":entry").c_str());
    e.append_attribute("key") = key.c_str();
    e.text() = value.c_str();
  }
  return {};
}

pugi::xml_node find_metadata(const pugi::xml_node& domain) {
  for (auto e : domain.child("metadata").children()) {
    if (e.type() == pugi::node_element && local_name(e) == "domain" && namespace_of(e) == k_metadata_namespace) {
      return e;
    }
  }
  return {};
}

Result<Metadata> read_metadata(const pugi::xml_node& element) {
  Metadata m;
  for (auto e : element.children()) {
    if (e.type() != pugi::node_element) {
      continue;
    }
    if (local_name(e) == "tool") {
      m.tool = e.text().get();
    } else if (local_name(e) == "entry") {
      std::string key = e.attribute("key").value();
      if (!m.values.emplace(key, e.text().get()).second) {
        return fail(Errc::invalid_argument, fmt::format("utsushi metadata: key '{}' appears twice", key));
      }
    }
  }
  if (m.tool.empty()) {
    return fail(Errc::invalid_argument, "utsushi metadata: no <tool>");
  }
  return m;
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

bool is_mac(std::string_view s) {
  if (s.size() != 17) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i % 3 == 2 ? s[i] != ':' : !std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

Result<std::uint64_t> scaled_bytes(std::string_view value, std::string_view unit, std::string_view what) {
  struct Scale {
    std::string_view name;
    std::uint64_t factor;
  };
  static constexpr Scale k_scales[] = {
      {"b", 1},           {"bytes", 1},          {"k", 1ull << 10},       {"KiB", 1ull << 10},
      {"KB", 1000},       {"M", 1ull << 20},     {"MiB", 1ull << 20},     {"MB", 1000000},
      {"G", 1ull << 30},  {"GiB", 1ull << 30},   {"GB", 1000000000},      {"T", 1ull << 40},
      {"TiB", 1ull << 40}, {"TB", 1000000000000}};
  std::uint64_t factor = 0;
  std::string_view u = unit.empty() ? std::string_view("KiB") : unit;
  for (const auto& s : k_scales) {
    if (s.name == u) {
      factor = s.factor;
    }
  }
  if (factor == 0) {
    return fail(Errc::invalid_argument, fmt::format("domain XML: {}: unknown unit '{}'", what, unit));
  }
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || value.empty()) {
    return fail(Errc::invalid_argument, fmt::format("domain XML: {}: '{}' is not a number", what, value));
  }
  if (n > UINT64_MAX / factor) {
    return fail(Errc::invalid_argument, fmt::format("domain XML: {}: {} {} is too large", what, value, u));
  }
  return n * factor;
}

}  // namespace utsushi::virt::xml
