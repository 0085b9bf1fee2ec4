#pragma once
// Reading and editing libvirt domain XML (pure functions over pugixml; no
// libvirt calls): the identity of a definition, the checks and edits of a
// livemig destination, and a template domain turned into a clone's. Building
// a definition from scratch: domain_spec.h.
//
// A livemig destination domain is the source's migratable XML plus
// `-incoming defer` through libvirt's QEMU namespace
// (https://libvirt.org/drvqemu.html#pass-through-of-arbitrary-qemu-commands):
//
//   <domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
//     ...
//     <qemu:commandline><qemu:arg value='-incoming'/><qemu:arg value='defer'/></qemu:commandline>
//   </domain>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/virt/metadata.h"

namespace utsushi::virt {

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

// A disk image that moves: the file `from` of the definition becomes `to`.
struct DiskMove {
  std::string from;
  std::string to;
};
// The definition with each move's disk source replaced: `from` must be the
// <source file> of exactly one <disk type='file'> (else Errc::invalid_argument
// naming it); its <source file> becomes `to`. Everything else stays, the
// disk's <driver> and <backingStore> included (livemig's destination keeps
// the backing file at the source's path). Errc::invalid_argument as
// domain_identity().
[[nodiscard]] Result<std::string> relocated_disks_xml(std::string_view xml, const std::vector<DiskMove>& moves);
// The MAC addresses of the domain's <interface>s, lower case, in document
// order (interfaces without one are skipped). Errc::invalid_argument as
// domain_identity().
[[nodiscard]] Result<std::vector<std::string>> interface_macs(std::string_view xml);

// --- A template domain made into another (clone's `domain:NAME` golden) ----

// A disk of the template that gets a new source.
struct DiskSource {
  std::string target;  // the template disk's <target dev>, e.g. "vda"
  std::string path;    // the new image file
  std::string format;  // its format: "qcow2", "raw"
};

struct TemplateEdits {
  std::string name;  // required
  std::string uuid;  // empty: none (libvirt makes one up)
  // nullopt: every <mac> is dropped (libvirt picks them); otherwise exactly
  // one MAC per <interface>, in document order.
  std::optional<std::vector<std::string>> macs;
  // Every writable disk (device 'disk', not <readonly/> nor <shareable/>) of
  // the template must be named here: a copy never shares its template's
  // writable disk. Read-only and shareable disks, CD-ROMs and floppies stay.
  std::vector<DiskSource> disks;
  std::optional<std::uint64_t> memory_bytes;  // rounded up to KiB
  std::optional<unsigned> vcpus;              // drops a <cpu><topology> that would not match
  std::optional<Metadata> metadata;           // replaces utsushi's element (metadata.h)
};

// `xml` (a template domain's definition, e.g. its inactive XML) with a new
// identity: name and UUID set; the runtime id, <genid> value and the SMBIOS
// system UUID dropped (libvirt makes new ones); MACs dropped or replaced and
// interface target devices dropped; disk sources replaced (driver format set,
// <backingStore> dropped); the NVRAM path dropped (libvirt makes a fresh
// store from the template it names); domain-level <seclabel>s dropped;
// graphics ports made automatic; UNIX channel paths dropped and other
// device log/source paths holding the old name renamed. Everything else,
// the devices above all, stays. Errc::invalid_argument naming what does not
// fit: an empty name, a bad UUID or MAC, a MAC count other than the number of
// interfaces, a disk target the template lacks, a writable disk left unnamed.
[[nodiscard]] Result<std::string> instantiate_template(std::string_view xml, const TemplateEdits& edits);

}  // namespace utsushi::virt
