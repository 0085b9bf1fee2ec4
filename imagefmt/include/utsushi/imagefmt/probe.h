#pragma once
// Format probing by magic, with scores (QEMU's model): every known format
// scores the first bytes of an image; raw scores lowest (1), so it wins only
// when nothing else matches. Formats recognised here may still be refused by
// the registry when utsushi cannot read them (vhd, vhdx, vdi).

#include <cstdint>
#include <span>
#include <string>

namespace utsushi::imagefmt {

// Bytes a probe needs from the start of the image (less is fine for small files).
inline constexpr std::size_t k_probe_bytes = 4096;

struct ProbeResult {
  std::string format;  // "raw", "qcow2", "vmdk", "ova", "vhd", "vhdx", "vdi"
  int score = 0;       // 1 (raw) to 100 (certain)
};

ProbeResult probe_format(std::span<const std::uint8_t> head, std::uint64_t file_size);

}  // namespace utsushi::imagefmt
