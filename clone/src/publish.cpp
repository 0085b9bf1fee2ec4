// The host side of clone create (create.h step 4): pools, the golden's
// volumes, and each clone defined, filled and marked complete.
#include <fmt/core.h>

#include "plan.h"
#include "utsushi/common/log.h"

namespace utsushi::clone::detail {
namespace {

Result<bool> volume_exists(HostState& host, const std::string& name) {
  auto v = virt::volume_info(*host.conn, host.pool_name, name);
  if (v) {
    return true;
  }
  if (v.error().code() == Errc::not_found) {
    return false;
  }
  return std::unexpected(std::move(v).error());
}

Result<void> delete_if_present(HostState& host, const std::string& pool, const std::string& name) {
  auto r = virt::delete_volume(*host.conn, pool, name);
  if (!r && r.error().code() != Errc::not_found) {
    return r;
  }
  return {};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

}  // namespace

Result<void> ensure_pool(HostState& host) {
  if (!host.pool) {
    host.pool = UTSUSHI_TRY(virt::ensure_dir_pool(*host.conn, host.pool_name, host.pool_dir));
  }
  return {};
}

Result<void> ensure_golden(HostState& host, const Golden& golden, const ProgressFn& progress) {
  UTSUSHI_TRY(ensure_pool(host));
  host.golden_volumes.clear();
  for (const GoldenDisk& d : golden.disks) {
    bool there = UTSUSHI_TRY(volume_exists(host, d.volume));
    bool complete = UTSUSHI_TRY(volume_exists(host, golden_marker(d.volume)));
    if (there && complete) {
      host.golden_volumes.push_back(UTSUSHI_TRY(virt::volume_info(*host.conn, host.pool_name, d.volume)));
      continue;
    }
    if (there) {
      UTSUSHI_LOG_INFO("{}: removing the golden volume {} a killed run left incomplete", host.uri, d.volume);
      UTSUSHI_TRY(virt::delete_volume(*host.conn, host.pool_name, d.volume));
    }
    if (complete) {
      UTSUSHI_TRY(virt::delete_volume(*host.conn, host.pool_name, golden_marker(d.volume)));
    }
    UTSUSHI_LOG_INFO("{}: uploading the golden {} into pool {} as {}", host.uri, d.source, host.pool_name, d.volume);
    host.golden_volumes.push_back(
        UTSUSHI_TRY(virt::upload_volume(*host.conn, host.pool_name, d.volume, d.path, progress)));
    UTSUSHI_TRY(virt::create_volume(*host.conn, host.pool_name, golden_marker(d.volume), virt::VolumeFormat::raw, 0));
  }
  return {};
}

Result<void> remove_incomplete(HostState& host, const PlannedClone& clone) {
  const std::string& name = clone.record.name;
  UTSUSHI_LOG_INFO("{}: removing the clone {} a killed or failed run left incomplete", host.uri, name);
  if (clone.old) {
    auto pool = clone.old->values.find(k_pool);
    auto volumes = clone.old->values.find(k_volumes);
    if (pool != clone.old->values.end() && volumes != clone.old->values.end()) {
      for (const std::string& v : lines_of(volumes->second)) {
        UTSUSHI_TRY(delete_if_present(host, pool->second, v));
      }
    }
  }
  UTSUSHI_TRY(host.conn->destroy(name));
  auto r = host.conn->undefine(name);
  if (!r && r.error().code() != Errc::not_found) {
    return r;
  }
  return {};
}

Result<std::vector<std::string>> publish_clone(HostState& host, const CreateOptions& options, const Golden& golden,
                                               const guest::GuestOs& os, PlannedClone& clone,
                                               const std::vector<std::string>& staged, const ProgressFn& progress) {
  UTSUSHI_TRY(ensure_pool(host));
  std::vector<std::string> paths;
  for (const std::string& v : clone.volumes) {
    paths.push_back(host.pool->path + "/" + v);
  }
  const std::string& name = clone.record.name;
  std::string xml = UTSUSHI_TRY(
      clone_domain_xml(options, golden, os, clone, paths, clone_metadata(clone, host, golden, options.kind, false)));
  UTSUSHI_TRY(host.conn->define(xml, virt::Replace::no));
  // From here on the domain exists, marked incomplete: undo on any failure.
  std::size_t uploaded = 0;
  auto fill = [&]() -> Result<void> {
    for (std::size_t i = 0; i < staged.size(); ++i) {
      virt::VolumeInfo v = UTSUSHI_TRY(virt::upload_volume(*host.conn, host.pool_name, clone.volumes[i], staged[i], progress));
      ++uploaded;
      if (v.path != paths[i]) {
        return fail(Errc::internal, fmt::format("volume {} landed at {}, not {}", clone.volumes[i], v.path, paths[i]));
      }
    }
    std::string complete = UTSUSHI_TRY(
        clone_domain_xml(options, golden, os, clone, paths, clone_metadata(clone, host, golden, options.kind, true)));
    UTSUSHI_TRY(host.conn->define(complete, virt::Replace::update));
    return {};
  };
  if (auto r = fill(); !r) {
    for (std::size_t i = 0; i < uploaded; ++i) {
      if (auto d = virt::delete_volume(*host.conn, host.pool_name, clone.volumes[i]); !d) {
        UTSUSHI_LOG_ERROR("{}: removing the volume {} of the failed clone {}: {}", host.uri, clone.volumes[i], name,
                          d.error().message());
      }
    }
    if (auto u = host.conn->undefine(name); !u) {
      UTSUSHI_LOG_ERROR("{}: removing the failed clone {}: {}", host.uri, name, u.error().message());
    }
    return std::unexpected(std::move(r).error().with_context(name));
  }
  return paths;
}

}  // namespace utsushi::clone::detail
