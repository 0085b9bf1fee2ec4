#pragma once
// pugixml helpers shared by the domain XML readers and writers (private to
// the virt library).

#include <pugixml.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "utsushi/common/error.h"
#include "utsushi/virt/metadata.h"

namespace utsushi::virt::xml {

// Parses `text` into `doc`; its root must be <domain>. Errc::invalid_argument
// naming the parse error and its offset, or the wrong root.
[[nodiscard]] Result<pugi::xml_node> parse_domain(pugi::xml_document& doc, std::string_view text);

// The document as text: two-space indent, no XML declaration.
std::string save(const pugi::xml_document& doc);

// The namespace URI of an element: the nearest declaration of its prefix (or
// of the default namespace) on it or an ancestor; "" when none is.
std::string_view namespace_of(const pugi::xml_node& element);
// The element's name without its prefix.
std::string_view local_name(const pugi::xml_node& element);

// Element children of `parent` are replaced: the first child named `name`
// (created when missing) with every other child of that name removed.
pugi::xml_node only_child(pugi::xml_node parent, const char* name);

// Sets attribute `name` of `node`, adding it when missing.
void set_attr(pugi::xml_node node, const char* name, const char* value);

// Appends utsushi's element to `metadata` (a <metadata> element).
// Errc::invalid_argument when the tool is empty.
[[nodiscard]] Result<void> append_metadata(pugi::xml_node metadata, const Metadata& m);
// utsushi's element under the domain's <metadata>, or an empty node.
pugi::xml_node find_metadata(const pugi::xml_node& domain);
// Reads utsushi's element (any prefix).
[[nodiscard]] Result<Metadata> read_metadata(const pugi::xml_node& element);

// RFC 4122 text form: 8-4-4-4-12 hex digits.
bool is_uuid(std::string_view s);
// Six hex octets separated by ':'.
bool is_mac(std::string_view s);
std::string lower(std::string_view s);

// A libvirt scaled integer (https://libvirt.org/formatdomain.html#memory-allocation):
// `value` in `unit` (b, bytes, k, KiB, KB, M, MiB, MB, G, GiB, GB, T, TiB,
// TB; default KiB) as bytes. Errc::invalid_argument naming `what` when it is
// not a number, the unit is unknown or the product overflows.
[[nodiscard]] Result<std::uint64_t> scaled_bytes(std::string_view value, std::string_view unit, std::string_view what);

}  // namespace utsushi::virt::xml
