#pragma once
// The format registry: one explicit table (registry.cpp), format name -> open function.
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

// Probes the format of the file or device at `path` (reads its first bytes).
[[nodiscard]] Result<ProbeResult> probe_path(const std::string& path);

// Opens an image. Fails with not_supported for recognised-but-unreadable
// formats and with invalid_argument for unknown format names.
[[nodiscard]] Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path, const OpenOptions& options = {});

}  // namespace utsushi::imagefmt
