#include "utsushi/common/meminfo.h"

#include <fstream>
#include <string>

namespace utsushi {

std::optional<std::uint64_t> meminfo_bytes(std::string_view key) {
  std::ifstream in("/proc/meminfo");
  std::string name;
  std::uint64_t kib = 0;
  std::string unit;
  // Lines are "Name:   value kB" (a few fields have no unit; none that we read).
  while (in >> name >> kib) {
    if (name.size() == key.size() + 1 && name.back() == ':' && std::string_view(name).substr(0, key.size()) == key) {
      return kib * 1024;
    }
    std::getline(in, unit);  // the rest of the line
  }
  return std::nullopt;
}

}  // namespace utsushi
