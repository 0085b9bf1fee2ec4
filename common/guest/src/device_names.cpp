#include "utsushi/guest/device_names.h"

#include <algorithm>
#include <cctype>
#include <regex>

#include "utsushi/guest/session.h"

namespace utsushi::guest {
namespace {

// "a" -> 0, "z" -> 25, "aa" -> 26 (bijective base 26, as the kernel names sd disks).
std::size_t letters_index(std::string_view letters) {
  std::size_t n = 0;
  for (char c : letters) {
    n = n * 26 + static_cast<std::size_t>(c - 'a' + 1);
  }
  return n - 1;
}

int to_int(const std::string& s) { return s.empty() ? 0 : std::stoi(s); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string lvm_mapper_name(std::string_view vg, std::string_view lv) {
  auto escape = [](std::string_view s) {
    std::string out;
    for (char c : s) {
      out += c;
      if (c == '-') {
        out += '-';
      }
    }
    return out;
  };
  return "/dev/mapper/" + escape(vg) + "-" + escape(lv);
}

}  // namespace

std::optional<DiskPartRef> parse_disk_path(std::string_view path) {
  static const std::regex k_letters(R"(^/dev/(sd|hd|vd|xvd)([a-z]{1,2})([0-9]*)$)");
  static const std::regex k_nvme(R"(^/dev/nvme([0-9]+)n([0-9]+)(p([0-9]+))?$)");
  static const std::regex k_raid(R"(^/dev/(cciss|ida|rd)/c([0-9]+)d([0-9]+)(p([0-9]+))?$)");
  static const std::regex k_mmc(R"(^/dev/mmcblk([0-9]+)(p([0-9]+))?$)");
  const std::string s(path);
  std::smatch m;
  if (std::regex_match(s, m, k_letters)) {
    return DiskPartRef{letters_index(m[2].str()), to_int(m[3].str())};
  }
  if (std::regex_match(s, m, k_nvme)) {
    return DiskPartRef{static_cast<std::size_t>(to_int(m[1].str())), to_int(m[4].str())};
  }
  if (std::regex_match(s, m, k_raid)) {
    return DiskPartRef{static_cast<std::size_t>(to_int(m[3].str())), to_int(m[5].str())};
  }
  if (std::regex_match(s, m, k_mmc)) {
    return DiskPartRef{static_cast<std::size_t>(to_int(m[1].str())), to_int(m[3].str())};
  }
  return std::nullopt;
}

std::optional<int> parse_hardware_link(std::string_view path) {
  static const std::regex k_link(R"(^/dev/disk/by-(id|path)/([^/]+?)(-part([0-9]+))?$)");
  const std::string s(path);
  std::smatch m;
  if (!std::regex_match(s, m, k_link)) {
    return std::nullopt;
  }
  return to_int(m[4].str());
}

DeviceMap::DeviceMap(std::vector<DeviceInfo> devices, std::size_t disk_count)
    : m_devices(std::move(devices)), m_disk_count(disk_count) {}

Result<DeviceMap> DeviceMap::scan(Session& session) {
  std::vector<DeviceInfo> out;
  auto add = [&](const std::string& device, std::optional<DiskPartRef> pos,
                 std::vector<std::string> aliases) -> Result<void> {
    auto tags = UTSUSHI_TRY(session.blkid(device));
    DeviceInfo info;
    info.device = device;
    info.aliases = std::move(aliases);
    info.position = pos;
    info.fstype = tags["TYPE"];
    info.uuid = tags["UUID"];
    info.label = tags["LABEL"];
    info.partuuid = tags["PARTUUID"];
    out.push_back(std::move(info));
    return {};
  };
  std::vector<std::string> disks;
  for (std::size_t i = 0; i < session.disk_count(); ++i) {
    disks.push_back(UTSUSHI_TRY(session.disk_device(i)));
    UTSUSHI_TRY(add(disks.back(), DiskPartRef{i, 0}, {}));
  }
  for (const std::string& part : UTSUSHI_TRY(session.list_partitions())) {
    std::string disk = UTSUSHI_TRY(session.partition_disk(part));
    auto it = std::find(disks.begin(), disks.end(), disk);
    if (it == disks.end()) {
      continue;
    }
    int n = UTSUSHI_TRY(session.partition_number(part));
    UTSUSHI_TRY(add(part, DiskPartRef{static_cast<std::size_t>(it - disks.begin()), n}, {}));
  }
  for (const std::string& lv : UTSUSHI_TRY(session.list_lvs())) {
    // "/dev/VG/LV"
    std::string_view rest = std::string_view(lv).substr(5);
    std::size_t slash = rest.find('/');
    std::vector<std::string> aliases;
    if (slash != std::string_view::npos) {
      aliases.push_back(lvm_mapper_name(rest.substr(0, slash), rest.substr(slash + 1)));
    }
    UTSUSHI_TRY(add(lv, std::nullopt, std::move(aliases)));
  }
  for (const std::string& md : UTSUSHI_TRY(session.list_md_devices())) {
    UTSUSHI_TRY(add(md, std::nullopt, {}));
  }
  return DeviceMap(std::move(out), disks.size());
}

const DeviceInfo* DeviceMap::at(DiskPartRef ref) const {
  for (const DeviceInfo& d : m_devices) {
    if (d.position && *d.position == ref) {
      return &d;
    }
  }
  return nullptr;
}

std::optional<std::string> DeviceMap::stable_spec(std::string_view guest_path) const {
  std::optional<DiskPartRef> ref = parse_disk_path(guest_path);
  if (!ref) {
    std::optional<int> part = parse_hardware_link(guest_path);
    if (part && m_disk_count == 1) {
      ref = DiskPartRef{0, *part};  // one disk: its hardware name can only mean this one
    }
  }
  if (!ref) {
    return std::nullopt;
  }
  const DeviceInfo* info = at(*ref);
  if (info == nullptr || info->uuid.empty()) {
    return std::nullopt;
  }
  return "UUID=" + info->uuid;
}

bool DeviceMap::names_a_block_device(std::string_view spec) {
  for (std::string_view tag : {"UUID=", "LABEL=", "PARTUUID=", "PARTLABEL=", "/dev/"}) {
    if (spec.starts_with(tag)) {
      return true;
    }
  }
  return false;
}

const DeviceInfo* DeviceMap::find(std::string_view spec) const {
  auto by = [&](auto pred) -> const DeviceInfo* {
    for (const DeviceInfo& d : m_devices) {
      if (pred(d)) {
        return &d;
      }
    }
    return nullptr;
  };
  auto value_of = [&](std::string_view tag, std::string_view dir) -> std::optional<std::string_view> {
    if (spec.starts_with(tag)) {
      std::string_view v = spec.substr(tag.size());
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
        v = v.substr(1, v.size() - 2);
      }
      return v;
    }
    if (spec.starts_with(dir)) {
      return spec.substr(dir.size());
    }
    return std::nullopt;
  };
  if (auto v = value_of("UUID=", "/dev/disk/by-uuid/")) {
    return by([&](const DeviceInfo& d) { return !d.uuid.empty() && iequals(d.uuid, *v); });
  }
  if (auto v = value_of("LABEL=", "/dev/disk/by-label/")) {
    return by([&](const DeviceInfo& d) { return !d.label.empty() && d.label == *v; });
  }
  if (auto v = value_of("PARTUUID=", "/dev/disk/by-partuuid/")) {
    return by([&](const DeviceInfo& d) { return !d.partuuid.empty() && iequals(d.partuuid, *v); });
  }
  if (std::optional<DiskPartRef> ref = parse_disk_path(spec)) {
    return at(*ref);
  }
  if (std::optional<int> part = parse_hardware_link(spec); part && m_disk_count == 1) {
    return at(DiskPartRef{0, *part});
  }
  return by([&](const DeviceInfo& d) {
    return d.device == spec || std::find(d.aliases.begin(), d.aliases.end(), spec) != d.aliases.end();
  });
}

}  // namespace utsushi::guest
