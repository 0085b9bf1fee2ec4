#pragma once
// utsushi's own element under a domain's <metadata> (libvirt keeps foreign
// namespaces there untouched: https://libvirt.org/formatdomain.html#general-metadata):
//
//   <metadata>
//     <utsushi:domain xmlns:utsushi='urn:utsushi:libvirt:domain:1'>
//       <utsushi:tool>clone</utsushi:tool>
//       <utsushi:entry key='golden'>/srv/golden.qcow2</utsushi:entry>
//     </utsushi:domain>
//   </metadata>
//
// It records which utsushi tool made a domain, so a tool can refuse to touch
// domains it did not create (`clone destroy`), plus free key/value pairs.

#include <map>
#include <string>
#include <string_view>

#include "utsushi/common/error.h"

namespace utsushi::virt {

inline constexpr std::string_view k_metadata_namespace = "urn:utsushi:libvirt:domain:1";
inline constexpr std::string_view k_metadata_prefix = "utsushi";

struct Metadata {
  std::string tool;                           // "clone", "p2v", ...; never empty when encoded
  std::map<std::string, std::string> values;  // keys unique, any text (escaped on encoding)

  bool operator==(const Metadata&) const = default;
};

// Reads utsushi's element from its text (as virDomainGetMetadata returns it,
// without a prefix, or with any prefix bound to k_metadata_namespace).
// Unknown children are ignored; Errc::invalid_argument when the text is not
// XML, <tool> is missing or empty, or a key repeats.
[[nodiscard]] Result<Metadata> decode_metadata(std::string_view element_xml);

}  // namespace utsushi::virt
