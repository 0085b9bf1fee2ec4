#pragma once
// Cluster codecs for qcow2 compressed clusters (block/qcow2-threads.c):
//  - zlib: raw deflate. Written with windowBits -12 (QEMU inflates with -12,
//    so a larger window could produce distances QEMU rejects); read with -15.
//  - zstd: one plain frame per cluster, no length prefix; the reader accepts
//    several frames and ignores trailing bytes once the cluster is full.
// All functions are thread-safe (per-thread codec contexts).

#include <cstdint>
#include <optional>
#include <span>

#include "utsushi/common/error.h"
#include "utsushi/imagefmt/qcow2_format.h"

namespace utsushi::imagefmt::qcow2 {

// Fills `out` exactly from the compressed stream in `in` (which may carry
// trailing garbage). Errc::corruption when the stream is invalid or short.
[[nodiscard]] Result<void> decompress_cluster(CompressionType type, std::span<const std::uint8_t> in,
                                              std::span<std::uint8_t> out);

// Compresses `in` into `out`; returns the compressed length, or nothing when
// the result does not fit in out.size() bytes (store the cluster uncompressed).
std::optional<std::size_t> compress_cluster(CompressionType type, int level, std::span<const std::uint8_t> in,
                                            std::span<std::uint8_t> out);

}  // namespace utsushi::imagefmt::qcow2
