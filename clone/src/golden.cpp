#include "utsushi/clone/golden.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <fmt/core.h>

#include <filesystem>

#include "utsushi/common/log.h"
#include "utsushi/disk/disk_plan.h"
#include "utsushi/disk/used_blocks_filter.h"
#include "utsushi/imagefmt/output.h"
#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/registry.h"
#include "utsushi/virt/domain_spec.h"
#include "utsushi/virt/domain_xml.h"

namespace utsushi::clone {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view k_domain_prefix = "domain:";

struct FileIdentity {
  std::string real_path;
  std::uint64_t size = 0;
  std::uint64_t allocated = 0;
  std::string hash;  // 16 hex digits over path, size and modification time
};

Result<FileIdentity> identify(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fail_errno(errno, path);
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return fail(Errc::invalid_argument, fmt::format("{}: not a regular file or block device", path));
  }
  std::error_code ec;
  FileIdentity id;
  id.real_path = fs::canonical(path, ec).string();
  if (ec) {
    return fail(Errc::io_error, fmt::format("{}: {}", path, ec.message()));
  }
  id.size = static_cast<std::uint64_t>(st.st_size);
  id.allocated = static_cast<std::uint64_t>(st.st_blocks) * 512;
  std::string key = fmt::format("{}\n{}\n{}.{}", id.real_path, id.size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  id.hash = fmt::format("{:016x}", XXH3_64bits(key.data(), key.size()));
  return id;
}

// A name part safe in volume names.
std::string volume_safe(std::string s) {
  for (char& c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) {
      c = '_';
    }
  }
  return s.empty() ? std::string("golden") : s;
}

std::string stem_of(const std::string& path) {
  fs::path p(path);
  std::string stem = p.stem().string();
  return volume_safe(stem);
}

// Whether QEMU can use the image as a backing file as it is.
Result<bool> usable_as_backing(imagefmt::BlockDevice& dev, const std::string& format) {
  if (format == "raw") {
    return true;
  }
  if (format == "qcow2") {
    const imagefmt::Qcow2Details* d = imagefmt::qcow2_details(dev);
    return d != nullptr && d->backing_file.empty();
  }
  return false;
}

// Converts `dev` (used data only) into a qcow2 at `out` unless it is there.
Result<void> convert_once(imagefmt::BlockDevice& dev, const std::string& source, const std::string& out,
                          const ProgressFn& progress) {
  if (fs::exists(out)) {
    UTSUSHI_LOG_INFO("golden {}: using its conversion {}", source, out);
    return {};
  }
  UTSUSHI_LOG_INFO("golden {}: converting it (used data only) to {}", source, out);
  disk::DiskPlan plan = UTSUSHI_TRY(disk::plan_disk(dev, source));
  auto view = disk::make_used_view(dev, plan.used);
  imagefmt::OutputOptions o;
  o.format = "qcow2";
  UTSUSHI_TRY(imagefmt::write_image(*view, out, o, progress));
  return {};
}

Result<GoldenDisk> open_disk(const std::string& source, const std::optional<std::string>& format,
                             const std::string& stem, const GoldenOptions& options) {
  FileIdentity id = UTSUSHI_TRY(identify(source));
  imagefmt::OpenOptions o;
  o.format = format;
  auto dev = UTSUSHI_TRY_CTX(imagefmt::open_image(id.real_path, o), "golden " + source);
  std::string fmt_name = format ? *format : UTSUSHI_TRY(imagefmt::probe_path(id.real_path)).format;
  GoldenDisk d;
  d.source = source;
  d.virtual_size = dev->size();
  if (UTSUSHI_TRY(usable_as_backing(*dev, fmt_name))) {
    d.path = id.real_path;
    d.format = fmt_name;
    d.used_bytes = id.allocated;
  } else {
    std::error_code ec;
    fs::create_directories(options.cache_dir, ec);
    if (ec) {
      return fail(Errc::io_error, fmt::format("creating {}: {}", options.cache_dir, ec.message()));
    }
    d.path = fmt::format("{}/{}-{}.qcow2", options.cache_dir, stem, id.hash);
    d.format = "qcow2";
    UTSUSHI_TRY(convert_once(*dev, source, d.path, options.progress));
    d.used_bytes = UTSUSHI_TRY(identify(d.path)).allocated;
  }
  d.volume = fmt::format("{}-{}.{}", stem, id.hash, d.format);
  return d;
}

Result<Golden> open_domain_golden(const std::string& name, virt::Connection* conn, const GoldenOptions& options) {
  if (conn == nullptr) {
    return fail(Errc::invalid_argument, "a domain:NAME golden needs a libvirt connection (--connect)");
  }
  virt::DomainInfo info = UTSUSHI_TRY(conn->info(name));
  if (info.active) {
    return fail(Errc::failed_precondition,
                fmt::format("the golden domain {} is {} on {}: shut it down first (its disks must not change while "
                            "clones are made from them)",
                            name, virt::domain_state_name(info.state), conn->uri()));
  }
  Golden g;
  g.spec = std::string(k_domain_prefix) + name;
  g.stem = volume_safe(name);
  g.domain = name;
  g.host = conn->uri();
  g.template_xml = UTSUSHI_TRY(conn->xml(name, virt::k_xml_inactive | virt::k_xml_secure));
  g.macs = UTSUSHI_TRY(virt::interface_macs(g.template_xml));
  virt::DomainSpec spec = UTSUSHI_TRY_CTX(virt::decode_domain(g.template_xml), "golden domain " + name);
  for (const virt::DiskSpec& disk : spec.disks) {
    if (disk.readonly) {
      continue;
    }
    std::string stem = spec.disks.size() == 1 ? g.stem : fmt::format("{}-{}", g.stem, disk.target);
    GoldenDisk d = UTSUSHI_TRY_CTX(open_disk(disk.path, disk.format, stem, options),
                                   fmt::format("golden domain {} disk {}", name, disk.target));
    d.target = disk.target;
    g.disks.push_back(std::move(d));
  }
  if (g.disks.empty()) {
    return fail(Errc::invalid_argument, fmt::format("the golden domain {} has no writable disk", name));
  }
  return g;
}

}  // namespace

Result<Golden> open_golden(const std::string& spec, virt::Connection* conn, const GoldenOptions& options) {
  if (spec.starts_with(k_domain_prefix)) {
    return open_domain_golden(spec.substr(k_domain_prefix.size()), conn, options);
  }
  if (!fs::exists(spec)) {
    return fail(Errc::not_found, fmt::format("golden {}: no such file (a domain is named domain:NAME)", spec));
  }
  Golden g;
  g.spec = spec;
  g.stem = stem_of(spec);
  g.disks.push_back(UTSUSHI_TRY(open_disk(spec, std::nullopt, g.stem, options)));
  return g;
}

Result<void> check_golden_unused(const Golden& golden, virt::Connection& conn) {
  for (const virt::DomainInfo& d : UTSUSHI_TRY(conn.list_domains())) {
    if (!d.active) {
      continue;
    }
    auto xml = conn.xml(d.name);
    if (!xml) {
      continue;  // gone since it was listed
    }
    auto spec = virt::decode_domain(*xml);
    if (!spec) {
      continue;  // a domain this library cannot model has no disk it could mistake
    }
    for (const virt::DiskSpec& disk : spec->disks) {
      std::error_code ec;
      std::string real = fs::weakly_canonical(disk.path, ec).string();
      for (const GoldenDisk& g : golden.disks) {
        if (!disk.readonly && (real == g.path || disk.path == g.source)) {
          return fail(Errc::failed_precondition,
                      fmt::format("the golden {} is in use: the running domain {} on {} writes it; stop it first",
                                  g.source, d.name, conn.uri()));
        }
      }
    }
  }
  return {};
}

}  // namespace utsushi::clone
