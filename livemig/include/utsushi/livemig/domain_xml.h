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
#include <vector>

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

// Whether a receiver may start `xml`, a definition a token holder sent:
// refuses (Errc::permission_denied, naming the element and the domain) what
// would give the sender more than a confined guest on this host:
//   - elements of the QEMU namespace (any prefix, or as default namespace):
//     arguments or capabilities in <qemu:commandline>/<qemu:capabilities>
//     (empty ones pass), <qemu:override>, and any other except
//     <qemu:deprecation>;
//   - <hostdev> anywhere, and <interface type='hostdev'> (host PCI/USB/SCSI
//     devices handed to the guest);
//   - a <seclabel> that chooses or lifts confinement: type 'none' (unless
//     model 'none', the mark of a source host without a security driver),
//     type 'static', relabel 'no', a <baselabel>, and on a device a <label>.
// Disks, filesystems and other paths are not checked (see livemig(1)).
// Errc::invalid_argument as domain_identity(). Call it before
// incoming_domain_xml(), which adds the one QEMU argument livemig needs.
[[nodiscard]] Result<void> check_incoming_domain(std::string_view xml);

// The names of the <graphics> types of `xml` (as libvirt gives it with
// VIR_DOMAIN_XML_SECURE) that carry a password, in document order.
// Errc::invalid_argument as domain_identity().
[[nodiscard]] Result<std::vector<std::string>> graphics_with_password(std::string_view xml);

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
