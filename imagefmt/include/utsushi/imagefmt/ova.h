#pragma once
// OVA (DMTF DSP0243 "Open Virtualization Format"): a tar archive holding the
// .ovf descriptor first, then a .mf manifest of SHA256 lines, then the disks.
//
// Writing: the disk becomes a streamOptimized VMDK in a temporary file (tar
// needs each member's size before its data), its SHA256 computed, the OVF
// states CPUs, memory, disk capacity and each file's exact size
// (ovf:size); the archive is written with libarchive (pax_restricted: plain
// ustar unless a member needs pax headers), uid/gid 0, mode 0644.
// Reading: the archive is validated with libarchive (absolute paths, "..",
// links, device entries and names used twice are refused; the .ovf must come
// first), the OVF's first disk is located and read in place through the VMDK
// driver.
//
// Integrity: a manifest (.mf, after the .ovf or at the end of the archive)
// must be well-formed, list only members of the archive, and list the
// descriptor and the disk. The descriptor's digest is compared when the
// archive is opened. The disk's digest is computed while the disk is read, in
// the same pass (no second read of a multi-GB member), and compared once all
// of its bytes have been hashed: when a reader has read (nearly) all of it,
// or at BlockDevice::verify_integrity(). A mismatch is Errc::corruption
// naming the member, the algorithm and the manifest line. So a conversion
// verifies the disk; `info`, which reads only headers and tables, verifies
// the descriptor and the manifest's form but not the disk's bytes.
// Certificates (.cert) are not verified.

#include <cstdint>
#include <memory>
#include <string>

#include "utsushi/common/progress.h"
#include "utsushi/imagefmt/block_device.h"
#include "utsushi/imagefmt/check_report.h"
#include "utsushi/imagefmt/vmdk.h"
#include "utsushi/imagefmt/registry.h"

namespace utsushi::imagefmt {

// The disk's digest is computed over its bytes in order: a read starting at
// most this far past the bytes hashed so far extends the hash (the gap read
// once more); once the hash is this close to the member's end, the rest is
// hashed and the digest compared. A disk member smaller than this is
// therefore verified as soon as the archive is opened.
inline constexpr std::uint64_t k_ova_digest_window = 16u << 20;

struct OvaWriteOptions {
  std::string name = "vm";           // VirtualSystem name; files are NAME.ovf, NAME.mf, NAME-disk1.vmdk
  unsigned cpus = 2;
  std::uint64_t memory_mib = 2048;
  unsigned threads = 0;
  ProgressFn progress;
};

// Writes an OVA holding `source` as its only disk to the empty regular file
// `fd`. `temp_dir` receives the temporary VMDK (removed on return).
// Returns the statistics of the disk it wrote.
[[nodiscard]] Result<VmdkWriteStats> write_ova(BlockDevice& source, int fd, const std::string& temp_dir, const OvaWriteOptions& options);

// Opens the first disk of an OVA read-only (registry entry point).
[[nodiscard]] Result<std::unique_ptr<BlockDriver>> open_ova(const std::string& path, const OpenOptions& options,
                                                            bool probed);

// Verifies an OVA whole: the digest of every member the manifest lists (each
// read once), and the disk read through the VMDK driver (every grain
// inflated). Mismatches and corrupt grains are corruptions in the report;
// fails only when the archive cannot be indexed.
[[nodiscard]] Result<CheckReport> check_ova(const std::string& path);

}  // namespace utsushi::imagefmt
