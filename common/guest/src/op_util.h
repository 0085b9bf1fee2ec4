#pragma once
// Helpers shared by the operations (private to the guest library).
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

#include "utsushi/guest/config_edit.h"
#include "utsushi/guest/operation.h"

namespace utsushi::guest::detail {

inline std::string join_edits(const std::vector<std::string>& edits) {
  return fmt::format("{}", fmt::join(edits, "; "));
}

// Applies `edit` (text -> Edited) to a guest file if it exists; writes and
// records the result when anything changed.
template <class EditFn>
[[nodiscard]] Result<void> edit_file(Target& t, const std::string& path, EditFn edit) {
  std::optional<std::string> text = UTSUSHI_TRY(t.read(path));
  if (!text) {
    return {};
  }
  Edited out = edit(*text);
  if (out.changed()) {
    UTSUSHI_TRY(t.write(path, out.text, join_edits(out.edits)));
  }
  return {};
}

// The last lines of a command's output, for error messages.
inline std::string output_tail(const std::string& output, std::size_t max = 1500) {
  return output.size() <= max ? output : fmt::format("...{}", std::string_view(output).substr(output.size() - max));
}

}  // namespace utsushi::guest::detail
