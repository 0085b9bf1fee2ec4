#pragma once
// Editing libvirt domain XML for a libvirt destination (pure functions; no
// libvirt calls). The destination domain is the source's migratable XML plus
// `-incoming defer` through libvirt's QEMU namespace
// (https://libvirt.org/drvqemu.html#pass-through-of-arbitrary-qemu-commands):
//
//   <domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
//     ...
//     <qemu:commandline><qemu:arg value='-incoming'/><qemu:arg value='defer'/></qemu:commandline>
//   </domain>

#include <string>
#include <string_view>

#include "utsushi/common/error.h"

namespace utsushi::livemig {

inline constexpr std::string_view k_qemu_xml_namespace = "http://libvirt.org/schemas/domain/qemu/1.0";

struct DomainIdentity {
  std::string name;
  std::string uuid;  // may be empty (libvirt then makes one up)
};

// The name and UUID of a domain definition. Errc::invalid_argument when the
// text is not XML with a <domain> root or has no name.
[[nodiscard]] Result<DomainIdentity> domain_identity(std::string_view xml);

// The definition with `-incoming defer` added to its QEMU command line. Uses
// the document's own prefix for the QEMU namespace when it declares one and
// adds `qemu` otherwise. Refuses (Errc::not_supported) a definition whose
// QEMU command line already has -incoming.
[[nodiscard]] Result<std::string> incoming_domain_xml(std::string_view xml);

// The inverse for a domain livemig itself received earlier (its live XML
// still carries the `-incoming defer` pair): removes that pair of QEMU
// arguments, and the command line element if nothing else is left in it.
// Other arguments, and an -incoming not followed by defer, stay as they are.
// Errc::invalid_argument as domain_identity().
[[nodiscard]] Result<std::string> without_incoming_defer(std::string_view xml);

}  // namespace utsushi::livemig
