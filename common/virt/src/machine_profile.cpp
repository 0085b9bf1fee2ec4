// The machine profile's JSON encoding and strict decoding (machine_profile.h).
#include "utsushi/virt/machine_profile.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/fd.h"

namespace utsushi::virt {

using nlohmann::json;

std::string_view name_of(FirmwareKind f) noexcept {
  switch (f) {
    case FirmwareKind::bios: return "bios";
    case FirmwareKind::uefi: return "uefi";
    case FirmwareKind::unknown: break;
  }
  return "unknown";
}

namespace {

constexpr std::string_view k_source_host = "running-machine";
constexpr std::string_view k_source_images = "images";

json encode_cpus(const CpuInfo& c) {
  return {{"count", c.count}, {"cores", c.cores}, {"model", c.model}, {"vendor", c.vendor}, {"flags", c.flags}};
}

json encode_nic(const NicInfo& n) {
  return {{"name", n.name},
          {"mac", n.mac},
          {"driver", n.driver ? json(*n.driver) : json(nullptr)},
          {"bus-path", n.bus_path},
          {"addresses", n.addresses}};
}

json encode_disk(const DiskInfo& d) {
  json j = {{"source", d.source}, {"image", d.image}, {"size", d.size}, {"partition-table", d.partition_table}};
  if (d.model) {
    j["model"] = *d.model;
  }
  if (d.rotational) {
    j["rotational"] = *d.rotational;
  }
  return j;
}

// --- Strict reading: every access checked, nothing thrown -----------------

class Reader {
 public:
  Reader(const json& object, std::string where) : m_j(object), m_where(std::move(where)) {}

  const json* find(const char* key) const {
    auto it = m_j.find(key);
    return it == m_j.end() || it->is_null() ? nullptr : &*it;
  }
  Result<std::string> string(const char* key) const {
    const json* v = find(key);
    if (!v || !v->is_string()) {
      return bad(key, "a string");
    }
    return v->get<std::string>();
  }
  Result<std::optional<std::string>> optional_string(const char* key) const {
    if (!find(key)) {
      return std::nullopt;
    }
    return UTSUSHI_TRY(string(key));
  }
  Result<std::uint64_t> number(const char* key) const {
    const json* v = find(key);
    if (!v || !v->is_number_unsigned()) {
      return bad(key, "a non-negative integer");
    }
    return v->get<std::uint64_t>();
  }
  Result<unsigned> count(const char* key) const {
    auto n = UTSUSHI_TRY(number(key));
    if (n > UINT32_MAX) {
      return bad(key, "a count below 2^32");
    }
    return static_cast<unsigned>(n);
  }
  Result<std::vector<std::string>> strings(const char* key) const {
    std::vector<std::string> out;
    const json* v = find(key);
    if (!v) {
      return out;
    }
    if (!v->is_array()) {
      return bad(key, "an array of strings");
    }
    for (const auto& e : *v) {
      if (!e.is_string()) {
        return bad(key, "an array of strings");
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  // The member `key` as an object (nullptr when absent or null).
  Result<const json*> object(const char* key) const {
    const json* v = find(key);
    if (v && !v->is_object()) {
      return bad(key, "an object");
    }
    return v;
  }
  Result<const json*> array(const char* key) const {
    const json* v = find(key);
    if (v && !v->is_array()) {
      return bad(key, "an array");
    }
    return v;
  }
  const std::string& where() const { return m_where; }

 private:
  std::unexpected<Error> bad(const char* key, const char* what) const {
    return fail(Errc::invalid_argument, fmt::format("machine profile: {}{} must be {}", m_where, key, what));
  }
  const json& m_j;
  std::string m_where;
};

Result<CpuInfo> decode_cpus(const json& j) {
  Reader r(j, "cpus.");
  CpuInfo c;
  c.count = UTSUSHI_TRY(r.count("count"));
  c.cores = UTSUSHI_TRY(r.count("cores"));
  c.model = UTSUSHI_TRY(r.optional_string("model")).value_or("");
  c.vendor = UTSUSHI_TRY(r.optional_string("vendor")).value_or("");
  c.flags = UTSUSHI_TRY(r.strings("flags"));
  return c;
}

Result<NicInfo> decode_nic(const json& j, std::size_t i) {
  if (!j.is_object()) {
    return fail(Errc::invalid_argument, fmt::format("machine profile: nics[{}] must be an object", i));
  }
  Reader r(j, fmt::format("nics[{}].", i));
  NicInfo n;
  n.name = UTSUSHI_TRY(r.string("name"));
  n.mac = UTSUSHI_TRY(r.string("mac"));
  n.driver = UTSUSHI_TRY(r.optional_string("driver"));
  n.bus_path = UTSUSHI_TRY(r.optional_string("bus-path")).value_or("");
  n.addresses = UTSUSHI_TRY(r.strings("addresses"));
  return n;
}

Result<DiskInfo> decode_disk(const json& j, std::size_t i) {
  if (!j.is_object()) {
    return fail(Errc::invalid_argument, fmt::format("machine profile: disks[{}] must be an object", i));
  }
  Reader r(j, fmt::format("disks[{}].", i));
  DiskInfo d;
  d.source = UTSUSHI_TRY(r.string("source"));
  d.image = UTSUSHI_TRY(r.optional_string("image")).value_or("");
  d.size = UTSUSHI_TRY(r.number("size"));
  d.partition_table = UTSUSHI_TRY(r.optional_string("partition-table")).value_or("");
  d.model = UTSUSHI_TRY(r.optional_string("model"));
  if (const json* rot = r.find("rotational"); rot) {
    if (!rot->is_boolean()) {
      return fail(Errc::invalid_argument, fmt::format("machine profile: disks[{}].rotational must be a boolean", i));
    }
    d.rotational = rot->get<bool>();
  }
  return d;
}

Result<void> decode_header(const Reader& r, MachineProfile& p) {
  if (UTSUSHI_TRY(r.string("type")) != k_profile_type) {
    return fail(Errc::invalid_argument, fmt::format("machine profile: type is not {}", k_profile_type));
  }
  auto version = UTSUSHI_TRY(r.number("version"));
  if (version < 1 || version > static_cast<std::uint64_t>(k_profile_version)) {
    return fail(Errc::not_supported, fmt::format("machine profile: version {} (this utsushi reads 1 to {})", version,
                                                 k_profile_version));
  }
  auto source = UTSUSHI_TRY(r.string("source"));
  if (source != k_source_host && source != k_source_images) {
    return fail(Errc::invalid_argument, fmt::format("machine profile: unknown source '{}'", source));
  }
  p.source = source == k_source_host ? ProfileSource::host : ProfileSource::images;
  auto firmware = UTSUSHI_TRY(r.string("firmware"));
  if (firmware != "bios" && firmware != "uefi" && firmware != "unknown") {
    return fail(Errc::invalid_argument, fmt::format("machine profile: unknown firmware '{}'", firmware));
  }
  p.firmware = firmware == "bios" ? FirmwareKind::bios : firmware == "uefi" ? FirmwareKind::uefi : FirmwareKind::unknown;
  p.firmware_evidence = UTSUSHI_TRY(r.optional_string("firmware-evidence")).value_or("");
  p.hostname = UTSUSHI_TRY(r.optional_string("hostname")).value_or("");
  return {};
}

Result<void> decode_hardware(const Reader& r, MachineProfile& p) {
  if (const json* cpus = UTSUSHI_TRY(r.object("cpus")); cpus) {
    p.cpus = UTSUSHI_TRY(decode_cpus(*cpus));
  }
  if (const json* memory = UTSUSHI_TRY(r.object("memory")); memory) {
    p.memory_bytes = UTSUSHI_TRY(Reader(*memory, "memory.").number("bytes"));
  }
  if (const json* nics = UTSUSHI_TRY(r.array("nics")); nics) {
    p.nics.emplace();
    for (std::size_t i = 0; i < nics->size(); ++i) {
      p.nics->push_back(UTSUSHI_TRY(decode_nic((*nics)[i], i)));
    }
  }
  if (const json* dmi = UTSUSHI_TRY(r.object("dmi")); dmi) {
    Reader d(*dmi, "dmi.");
    p.dmi = DmiInfo{UTSUSHI_TRY(d.optional_string("vendor")).value_or(""),
                    UTSUSHI_TRY(d.optional_string("product")).value_or("")};
  }
  const json* disks = UTSUSHI_TRY(r.array("disks"));
  if (!disks) {
    return fail(Errc::invalid_argument, "machine profile: disks must be an array");
  }
  for (std::size_t i = 0; i < disks->size(); ++i) {
    p.disks.push_back(UTSUSHI_TRY(decode_disk((*disks)[i], i)));
  }
  return {};
}

}  // namespace

std::string encode_profile(const MachineProfile& p) {
  json disks = json::array();
  for (const auto& d : p.disks) {
    disks.push_back(encode_disk(d));
  }
  json j = {{"type", k_profile_type},
            {"version", k_profile_version},
            {"source", p.source == ProfileSource::host ? k_source_host : k_source_images},
            {"cpus", p.cpus ? encode_cpus(*p.cpus) : json(nullptr)},
            {"memory", p.memory_bytes ? json{{"bytes", *p.memory_bytes}} : json(nullptr)},
            {"nics", nullptr},
            {"firmware", name_of(p.firmware)},
            {"firmware-evidence", p.firmware_evidence},
            {"disks", disks}};
  if (p.nics) {
    j["nics"] = json::array();
    for (const auto& n : *p.nics) {
      j["nics"].push_back(encode_nic(n));
    }
  }
  if (p.source == ProfileSource::host || !p.hostname.empty()) {
    j["hostname"] = p.hostname;
  }
  if (p.dmi) {
    j["dmi"] = {{"vendor", p.dmi->vendor}, {"product", p.dmi->product}};
  }
  return j.dump(2) + "\n";
}

Result<MachineProfile> decode_profile(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) {
    return fail(Errc::invalid_argument, "machine profile: not JSON");
  }
  if (!j.is_object()) {
    return fail(Errc::invalid_argument, "machine profile: not a JSON object");
  }
  Reader r(j, "");
  MachineProfile p;
  UTSUSHI_TRY(decode_header(r, p));
  UTSUSHI_TRY(decode_hardware(r, p));
  return p;
}

Result<MachineProfile> read_profile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return fail_errno(errno, path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return fail_errno(errno, path);
  }
  return UTSUSHI_TRY_CTX(decode_profile(ss.str()), path);
}

Result<void> write_profile(const MachineProfile& profile, const std::string& path) {
  auto file = UTSUSHI_TRY(AtomicFile::create(path));
  std::string text = encode_profile(profile);
  UTSUSHI_TRY(write_full(file.fd(), std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), path));
  return file.commit();
}

}  // namespace utsushi::virt
