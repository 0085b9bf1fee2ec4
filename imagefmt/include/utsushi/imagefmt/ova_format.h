#pragma once
// OVF package formats (DMTF DSP0243 "Open Virtualization Format
// Specification" 1.1.0 and 2.1.0): the manifest (.mf), the descriptor (.ovf)
// as far as utsushi writes and reads it, and the message digests the
// manifest lists. Pure functions; the archive itself is ova.h's job.
//
// Manifest (DSP0243 clause 5.1, "OVF package structure"): one line per file of the package other than the
// manifest and the certificate, "ALG(NAME)= HEX", ALG SHA1 (OVF 1.x) or
// SHA256/SHA512 (OVF 2.x); some tools write "ALG (NAME) = HEX", which is read
// too. Lines end in "\n" (a "\r" before it is accepted); empty lines are
// skipped.
//
// Descriptor: written with pugixml, one VirtualSystem with CPUs, memory, an
// LSI Logic SCSI controller and one streamOptimized disk (the element and
// attribute set VirtualBox and VMware import). Read with pugixml: the disk
// is the first Disk of the DiskSection, its file the References/File whose
// id the Disk's fileRef names. Elements and attributes are matched by local
// name (whatever namespace prefix the producer chose).

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"

namespace utsushi::imagefmt::ova {

// --- Digests (libcrypto EVP) -------------------------------------------------
enum class DigestAlgorithm : std::uint8_t { sha1, sha256, sha512 };

// The manifest's name of an algorithm ("SHA1", "SHA256", "SHA512").
std::string_view digest_name(DigestAlgorithm algorithm) noexcept;
// Bytes of a digest (20, 32, 64).
std::size_t digest_size(DigestAlgorithm algorithm) noexcept;

// A running message digest. Move-only; not thread-safe.
class Digest {
 public:
  [[nodiscard]] static Result<Digest> create(DigestAlgorithm algorithm);
  Digest(Digest&&) noexcept;
  Digest& operator=(Digest&&) noexcept;
  ~Digest();

  DigestAlgorithm algorithm() const noexcept { return m_algorithm; }
  void update(std::span<const std::uint8_t> bytes);
  void update(std::string_view text);
  // The digest in lower-case hexadecimal; the Digest is finished afterwards
  // (further calls fail with Errc::internal).
  [[nodiscard]] Result<std::string> hex_digest();

 private:
  struct Context;
  Digest(DigestAlgorithm algorithm, std::unique_ptr<Context> context);
  DigestAlgorithm m_algorithm;
  std::unique_ptr<Context> m_context;
};

// The digest of a whole buffer, in lower-case hexadecimal.
[[nodiscard]] Result<std::string> hex_digest_of(DigestAlgorithm algorithm, std::string_view bytes);

// --- Manifest ------------------------------------------------------------------
struct ManifestEntry {
  DigestAlgorithm algorithm = DigestAlgorithm::sha256;
  std::string file;
  std::string hex;    // lower case
  std::size_t line = 0;  // 1-based, for messages
};

// Parses a manifest. A line that is not "ALG(NAME)= HEX" with a known
// algorithm and a digest of its length is Errc::corruption naming the line
// number and its text; a file listed twice is Errc::corruption too.
[[nodiscard]] Result<std::vector<ManifestEntry>> parse_manifest(std::string_view text);
// One manifest line, "SHA256(NAME)= HEX\n".
std::string manifest_line(DigestAlgorithm algorithm, std::string_view file, std::string_view hex);

// --- Descriptor ------------------------------------------------------------------
struct OvfSettings {
  std::string name;              // VirtualSystem id and name
  unsigned cpus = 2;
  std::uint64_t memory_mib = 2048;
  std::string disk_file;         // the disk member's name (References/File href)
  std::uint64_t disk_file_size = 0;  // its exact size in bytes (ovf:size)
  std::uint64_t capacity = 0;    // the disk's virtual size in bytes
};

// The descriptor text (UTF-8, with an XML declaration).
std::string write_ovf(const OvfSettings& settings);

struct OvfDisk {
  std::string file;                  // References/File href
  std::optional<std::uint64_t> size; // ovf:size, when stated
  std::string format;                // Disk ovf:format (a URI), may be empty
};

// The first disk the descriptor declares. Errc::corruption when the text is
// not well-formed XML, declares no disk, or the disk's file reference is
// missing or dangling; Errc::not_supported for a compressed (ovf:compression
// other than "identity") or chunked (ovf:chunkSize) file.
[[nodiscard]] Result<OvfDisk> read_ovf_disk(std::string_view text);

}  // namespace utsushi::imagefmt::ova
