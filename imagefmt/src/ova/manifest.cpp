// OVF manifest lines (see ova_format.h).
#include <algorithm>
#include <set>

#include "utsushi/imagefmt/ova_format.h"

namespace utsushi::imagefmt::ova {
namespace {

constexpr std::size_t k_max_line_shown = 120;

std::optional<DigestAlgorithm> algorithm_named(std::string_view name) {
  for (DigestAlgorithm a : {DigestAlgorithm::sha1, DigestAlgorithm::sha256, DigestAlgorithm::sha512}) {
    if (name == digest_name(a)) {
      return a;
    }
  }
  return std::nullopt;
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) { return c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c; });
  return out;
}

// The line as a message shows it: control characters as '?', long lines cut.
std::string shown(std::string_view line) {
  std::string out(line.substr(0, k_max_line_shown));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = '?';
    }
  }
  return line.size() > k_max_line_shown ? out + "..." : out;
}

// "ALG(NAME)= HEX" or "ALG (NAME) = HEX": the name runs from the first '('
// to the last ')' before the '=' (names may hold parentheses).
std::optional<ManifestEntry> parse_line(std::string_view line) {
  auto open = line.find('(');
  auto eq = line.rfind('=');
  if (open == std::string_view::npos || eq == std::string_view::npos || eq < open) {
    return std::nullopt;
  }
  auto close = line.substr(0, eq).rfind(')');
  if (close == std::string_view::npos || close <= open + 1) {
    return std::nullopt;
  }
  std::string_view alg = line.substr(0, open);
  if (alg.ends_with(' ')) {
    alg.remove_suffix(1);
  }
  std::string_view between = line.substr(close + 1, eq - close - 1);
  std::string_view hex = line.substr(eq + 1);
  if (hex.starts_with(' ')) {
    hex.remove_prefix(1);
  }
  auto algorithm = algorithm_named(alg);
  if (!algorithm || !(between.empty() || between == " ") || hex.size() != 2 * digest_size(*algorithm) ||
      !is_hex(hex)) {
    return std::nullopt;
  }
  return ManifestEntry{*algorithm, std::string(line.substr(open + 1, close - open - 1)), lower(hex), 0};
}

}  // namespace

Result<std::vector<ManifestEntry>> parse_manifest(std::string_view text) {
  std::vector<ManifestEntry> entries;
  std::set<std::string, std::less<>> seen;
  std::size_t number = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++number;
    if (line.ends_with('\r')) {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      continue;
    }
    auto entry = parse_line(line);
    if (!entry) {
      return fail(Errc::corruption, "manifest line " + std::to_string(number) + " is not 'SHA1|SHA256|SHA512(FILE)= "
                                    "HEX' with a digest of the algorithm's length: '" + shown(line) + "'");
    }
    if (!seen.insert(entry->file).second) {
      return fail(Errc::corruption, "manifest line " + std::to_string(number) + " lists '" + shown(entry->file) +
                                        "' a second time");
    }
    entry->line = number;
    entries.push_back(std::move(*entry));
  }
  return entries;
}

std::string manifest_line(DigestAlgorithm algorithm, std::string_view file, std::string_view hex) {
  return std::string(digest_name(algorithm)) + "(" + std::string(file) + ")= " + std::string(hex) + "\n";
}

}  // namespace utsushi::imagefmt::ova
