#pragma once
// The golden a clone is made from: an image of any format imagefmt reads, an
// OVA, or `domain:NAME` (a stopped libvirt domain: its writable disks are the
// golden's disks and its XML the clones' template). The golden is never
// written: it is read here, and clones see it only as the read-only backing
// file of their overlays.
//
// A golden disk QEMU can use as a backing file as it is (raw, or qcow2
// without a backing file of its own) is used in place; any other (an OVA, a
// VMDK, a qcow2 chain) is converted once, used data only, into a qcow2 in the
// work directory's cache, named after the source's identity so a re-run finds
// it. Each golden disk has a volume name, the same on every host, under which
// it is uploaded once into a host's pool: STEM-IDENTITY.FORMAT, where IDENTITY
// hashes the source's path, size and modification time.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/common/progress.h"
#include "utsushi/virt/connection.h"

namespace utsushi::clone {

struct GoldenDisk {
  std::string source;       // as named by the user or the template domain
  std::string path;         // the local file clones are made from (source, or its conversion)
  std::string format;       // of `path`: "qcow2" or "raw"
  std::string target;       // domain goldens: the template disk's <target dev>; "" for images
  std::uint64_t virtual_size = 0;
  std::uint64_t used_bytes = 0;  // bytes of data in `path` (its allocated size)
  std::string volume;       // its name in a host's pool
};

struct Golden {
  std::string spec;                  // as given: a path or "domain:NAME"
  std::string stem;                  // the image's or domain's name, for volume names
  std::vector<GoldenDisk> disks;     // in the template's order (boot disk first)
  std::string domain;                // domain goldens: the template domain's name
  std::string template_xml;          // domain goldens: its inactive XML
  std::vector<std::string> macs;     // domain goldens: its NICs' MACs, in order
  std::optional<std::string> host;   // domain goldens: the URI it was found on
};

struct GoldenOptions {
  std::string cache_dir;  // where converted goldens are kept (created if missing)
  ProgressFn progress;    // conversion progress
};

// Opens `spec`. domain:NAME is looked up on `conn` (required for it) and must
// be shut off (Errc::failed_precondition naming its state otherwise); its disk
// files must be readable here. Errc::not_found for a missing image or
// domain, Errc::not_supported for formats imagefmt cannot read.
[[nodiscard]] Result<Golden> open_golden(const std::string& spec, virt::Connection* conn, const GoldenOptions& options);

// Refuses (Errc::failed_precondition, naming the domain) when a running
// domain on `conn` has one of the golden's files as a writable disk.
[[nodiscard]] Result<void> check_golden_unused(const Golden& golden, virt::Connection& conn);

}  // namespace utsushi::clone
