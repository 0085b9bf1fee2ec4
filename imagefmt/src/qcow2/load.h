#pragma once
// The first steps of reading any qcow2 file, shared by the reader
// (reader.cpp) and the checker (check.cpp): cluster 0 with the header and its
// extensions, and the snapshot table. Internal to imagefmt.

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "utsushi/imagefmt/qcow2_format.h"

namespace utsushi::imagefmt::qcow2 {

// Reads exactly buf.size() bytes of the file at `offset` (its own errors:
// io_error, out_of_range past the end).
using ReadAt = std::function<Result<void>(std::span<std::uint8_t> buf, std::uint64_t offset)>;

struct HeaderBlock {
  Header header;
  HeaderExtensions extensions;
  std::vector<std::uint8_t> cluster0;  // the first min(file size, 2 MiB) bytes (backing file name)
};

// Reads and decodes the header and its extensions; decoding errors name `name`.
[[nodiscard]] Result<HeaderBlock> load_header(const ReadAt& read, std::uint64_t file_size, const std::string& name,
                                              TableBounds bounds = TableBounds::inside_file);

// Reads and decodes the h.nb_snapshots entries of the snapshot table (at most
// 64 MiB, read in growing steps from 64 KiB); `consumed` is the table's size
// in bytes. Errc::corruption (naming `name`) when the table lies past the end
// of the file or does not decode; the read's own error when it fails.
[[nodiscard]] Result<std::vector<Snapshot>> load_snapshots(const ReadAt& read, const Header& h,
                                                           std::uint64_t file_size, const std::string& name,
                                                           std::uint64_t& consumed);

}  // namespace utsushi::imagefmt::qcow2
