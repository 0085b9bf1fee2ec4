#pragma once
// An OVA opened for reading (internal to imagefmt): the tar members indexed
// in one pass over their headers (libarchive, reading through the device the
// file is open as: skips cost nothing), the descriptor and the manifest read
// whole. Tar layout: POSIX ustar/pax (DSP0243 clause 5.3 "Distribution as a
// single file": the .ovf first, the .mf right after it or at the end).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/imagefmt/block_device.h"
#include "utsushi/imagefmt/ova_format.h"

namespace utsushi::imagefmt::ova {

inline constexpr std::uint64_t k_max_descriptor_bytes = 16u << 20;
inline constexpr std::uint64_t k_max_manifest_bytes = 1u << 20;

struct Member {
  std::string name;
  std::uint64_t data_offset = 0;  // of its bytes in the archive
  std::uint64_t size = 0;
};

struct Package {
  std::string path;  // for messages
  std::vector<Member> members;
  std::string descriptor_name;
  std::string descriptor;  // the .ovf text
  OvfDisk disk;            // the first disk it declares
  std::optional<std::string> manifest_name;
  std::vector<ManifestEntry> manifest;

  const Member* member(std::string_view name) const;
  const ManifestEntry* listed(std::string_view name) const;
};

// Indexes the archive in `file`. Refuses (Errc::corruption, naming the
// member): unsafe names (absolute, ".."), members that are not regular files,
// a name used twice, a first member that is not the .ovf, two manifests, a
// malformed manifest line, a manifest listing a file the archive lacks, a
// disk the descriptor names but the archive lacks or that runs past its end.
// Digests are not compared here (verify_descriptor, DigestFilter).
[[nodiscard]] Result<Package> read_package(BlockDevice& file, const std::string& path);

// Compares the descriptor with its manifest digest (nothing when unlisted).
[[nodiscard]] Result<void> verify_descriptor(const Package& package);

// The error for a member whose digest differs from the manifest's:
// "PATH: ova: member 'NAME' does not match the manifest: ..." (corruption).
Error digest_mismatch(std::string_view path, std::string_view manifest_name, const ManifestEntry& entry,
                      std::string_view computed);

}  // namespace utsushi::imagefmt::ova
