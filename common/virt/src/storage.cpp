#include "utsushi/virt/storage.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <fmt/core.h>
#include <pugixml.hpp>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "utsushi/virt/libvirt_error.h"
#include "xml_util.h"

namespace utsushi::virt {

namespace {

std::unexpected<Error> pool_failure(const std::string& what) {
  return fail(last_error_is(VIR_ERR_NO_STORAGE_POOL) || last_error_is(VIR_ERR_NO_STORAGE_VOL) ? Errc::not_found
                                                                                                : Errc::unavailable,
              fmt::format("{}: {}", what, last_error()));
}

std::string take_string(char* text) {
  std::string out = text ? text : "";
  std::free(text);
  return out;
}

Result<VirPool> lookup_pool(Connection& conn, const std::string& name) {
  VirPool p(virStoragePoolLookupByName(conn.get(), name.c_str()));
  if (!p) {
    return pool_failure(fmt::format("storage pool {} on {}", name, conn.uri()));
  }
  return p;
}

Result<VirVolume> lookup_volume(Connection& conn, virStoragePoolPtr pool, const std::string& pool_name,
                                const std::string& name) {
  VirVolume v(virStorageVolLookupByName(pool, name.c_str()));
  if (!v) {
    return pool_failure(fmt::format("volume {} of pool {} on {}", name, pool_name, conn.uri()));
  }
  return v;
}

Result<VolumeInfo> describe_volume(Connection& conn, virStorageVolPtr vol, const std::string& pool) {
  VolumeInfo info;
  info.pool = pool;
  const char* name = virStorageVolGetName(vol);
  info.name = name ? name : "?";
  std::string what = fmt::format("volume {} of pool {} on {}", info.name, pool, conn.uri());
  virStorageVolInfo vi{};
  char* path = virStorageVolGetPath(vol);
  char* desc = path ? virStorageVolGetXMLDesc(vol, 0) : nullptr;
  if (!path || !desc || virStorageVolGetInfo(vol, &vi) < 0) {
    std::free(path);
    std::free(desc);
    return pool_failure(what);
  }
  info.path = take_string(path);
  info.capacity = vi.capacity;
  info.allocation = vi.allocation;
  pugi::xml_document doc;
  std::string text = take_string(desc);
  if (!doc.load_buffer(text.data(), text.size())) {
    return fail(Errc::corruption, what + ": libvirt's description is not XML");
  }
  info.format = doc.child("volume").child("target").child("format").attribute("type").value();
  return info;
}

// The directory of a pool, or Errc::failed_precondition when it is not a
// directory pool.
Result<std::string> pool_directory(virStoragePoolPtr pool, const std::string& what) {
  std::string text = take_string(virStoragePoolGetXMLDesc(pool, 0));
  pugi::xml_document doc;
  if (text.empty() || !doc.load_buffer(text.data(), text.size())) {
    return pool_failure(what);
  }
  auto root = doc.child("pool");
  if (std::string_view(root.attribute("type").value()) != "dir") {
    return fail(Errc::failed_precondition,
                fmt::format("{} is a {} pool, not a directory pool", what, root.attribute("type").value()));
  }
  return std::string(root.child("target").child_value("path"));
}

Result<VirPool> define_dir_pool(Connection& conn, const std::string& name, const std::string& path) {
  pugi::xml_document doc;
  auto root = doc.append_child("pool");
  root.append_attribute("type") = "dir";
  root.append_child("name").text() = name.c_str();
  root.append_child("target").append_child("path").text() = path.c_str();
  std::string what = fmt::format("defining storage pool {} at {} on {}", name, path, conn.uri());
  VirPool p(virStoragePoolDefineXML(conn.get(), xml::save(doc).c_str(), 0));
  if (!p) {
    return fail(Errc::failed_precondition, fmt::format("{}: {}", what, last_error()));
  }
  if (virStoragePoolBuild(p.get(), 0) < 0) {
    auto e = fail(Errc::failed_precondition, fmt::format("building {}: {}", what, last_error()));
    virStoragePoolUndefine(p.get());
    return e;
  }
  return p;
}

// The XML of a new volume: name, size, format, optionally a backing file.
std::string volume_xml(const std::string& name, VolumeFormat format, std::uint64_t capacity,
                       const VolumeInfo* backing) {
  pugi::xml_document doc;
  auto root = doc.append_child("volume");
  root.append_child("name").text() = name.c_str();
  auto cap = root.append_child("capacity");
  cap.append_attribute("unit") = "bytes";
  cap.text() = capacity;
  auto alloc = root.append_child("allocation");
  alloc.append_attribute("unit") = "bytes";
  alloc.text() = 0;
  root.append_child("target").append_child("format").append_attribute("type") =
      format == VolumeFormat::qcow2 ? "qcow2" : "raw";
  if (backing) {
    auto b = root.append_child("backingStore");
    b.append_child("path").text() = backing->path.c_str();
    b.append_child("format").append_attribute("type") = backing->format.c_str();
  }
  return xml::save(doc);
}

Result<VolumeInfo> create_from_xml(Connection& conn, const std::string& pool, const std::string& name,
                                   const std::string& text) {
  auto p = UTSUSHI_TRY(lookup_pool(conn, pool));
  VirVolume v(virStorageVolCreateXML(p.get(), text.c_str(), 0));
  if (!v) {
    return fail(Errc::failed_precondition,
                fmt::format("creating volume {} in pool {} on {}: {}", name, pool, conn.uri(), last_error()));
  }
  return describe_volume(conn, v.get(), pool);
}

}  // namespace

Result<PoolInfo> ensure_dir_pool(Connection& conn, const std::string& name, const std::string& path) {
  std::string what = fmt::format("storage pool {} on {}", name, conn.uri());
  auto found = lookup_pool(conn, name);
  if (!found && found.error().code() != Errc::not_found) {
    return std::unexpected(std::move(found).error());
  }
  if (!found && path.empty()) {
    return fail(Errc::not_found, fmt::format("{} does not exist (and no directory was given to make it)", what));
  }
  VirPool p = found ? std::move(*found) : UTSUSHI_TRY(define_dir_pool(conn, name, path));
  auto dir = UTSUSHI_TRY(pool_directory(p.get(), what));
  if (!path.empty() && dir != path) {
    return fail(Errc::failed_precondition, fmt::format("{} is the directory {}, not {}", what, dir, path));
  }
  int active = virStoragePoolIsActive(p.get());
  if (active < 0 || (active == 0 && virStoragePoolCreate(p.get(), 0) < 0)) {
    return fail(Errc::failed_precondition, fmt::format("starting {}: {}", what, last_error()));
  }
  if (virStoragePoolSetAutostart(p.get(), 1) < 0) {
    return pool_failure("turning autostart on for " + what);
  }
  if (active == 1 && virStoragePoolRefresh(p.get(), 0) < 0) {
    return pool_failure("refreshing " + what);  // files made since libvirt last looked
  }
  return PoolInfo{name, dir};
}

Result<std::optional<PoolInfo>> find_dir_pool(Connection& conn, const std::string& path) {
  std::error_code ec;
  const std::string wanted = std::filesystem::weakly_canonical(path, ec).string();
  virStoragePoolPtr* pools = nullptr;
  int n = virConnectListAllStoragePools(conn.get(), &pools, VIR_CONNECT_LIST_STORAGE_POOLS_DIR);
  if (n < 0) {
    return pool_failure("listing the storage pools of " + conn.uri());
  }
  std::vector<VirPool> owned;
  for (int i = 0; i < n; ++i) {
    owned.emplace_back(pools[i]);
  }
  std::free(pools);
  for (const VirPool& p : owned) {
    std::string name = virStoragePoolGetName(p.get());
    auto dir = pool_directory(p.get(), fmt::format("storage pool {} on {}", name, conn.uri()));
    if (dir && (*dir == path || std::filesystem::weakly_canonical(*dir, ec).string() == wanted)) {
      return PoolInfo{name, *dir};
    }
  }
  return std::nullopt;
}

Result<VolumeInfo> volume_info(Connection& conn, const std::string& pool, const std::string& name) {
  auto p = UTSUSHI_TRY(lookup_pool(conn, pool));
  auto v = UTSUSHI_TRY(lookup_volume(conn, p.get(), pool, name));
  return describe_volume(conn, v.get(), pool);
}

Result<VolumeInfo> create_volume(Connection& conn, const std::string& pool, const std::string& name,
                                 VolumeFormat format, std::uint64_t capacity) {
  return create_from_xml(conn, pool, name, volume_xml(name, format, capacity, nullptr));
}

Result<VolumeInfo> create_overlay_volume(Connection& conn, const std::string& pool, const std::string& name,
                                         const VolumeInfo& backing) {
  if (backing.path.empty() || backing.format.empty() || backing.capacity == 0) {
    return fail(Errc::invalid_argument,
                fmt::format("overlay {}: the backing volume {} has no path, format or size", name, backing.name));
  }
  return create_from_xml(conn, pool, name, volume_xml(name, VolumeFormat::qcow2, backing.capacity, &backing));
}

Result<void> delete_volume(Connection& conn, const std::string& pool, const std::string& name) {
  auto p = UTSUSHI_TRY(lookup_pool(conn, pool));
  auto v = UTSUSHI_TRY(lookup_volume(conn, p.get(), pool, name));
  if (virStorageVolDelete(v.get(), 0) < 0) {
    return pool_failure(fmt::format("deleting volume {} of pool {} on {}", name, pool, conn.uri()));
  }
  return {};
}

}  // namespace utsushi::virt
