#pragma once
// The format registry: one explicit table, format name -> open function.
// open_image() probes the format when none is named and refuses formats it
// recognises but cannot read, naming them.

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "utsushi/imagefmt/block_device.h"
#include "utsushi/imagefmt/probe.h"
#include "utsushi/imagefmt/raw.h"

namespace utsushi::imagefmt {

struct OpenOptions {
  std::optional<std::string> format;  // probe when empty
  Access access = Access::read_only;
};

using OpenFn = Result<std::unique_ptr<BlockDriver>> (*)(const std::string& path, const OpenOptions& options,
                                                        bool probed);

struct FormatEntry {
  const char* name;
  const char* description;
  OpenFn open;  // nullptr: recognised by probing but not readable
};

// Every format utsushi knows, readable or not.
std::span<const FormatEntry> known_formats();

// Probes the format of the file or device at `path` (reads its first bytes).
Result<ProbeResult> probe_path(const std::string& path);

// Opens an image. Fails with not_supported for recognised-but-unreadable
// formats and with invalid_argument for unknown format names.
Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path, const OpenOptions& options = {});

}  // namespace utsushi::imagefmt
