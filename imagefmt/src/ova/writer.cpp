// OVA writing (see ova.h): the disk as a streamOptimized VMDK in a temporary
// file, then the archive: descriptor, manifest, disk.
#include "utsushi/imagefmt/ova.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/handles.h"
#include "utsushi/imagefmt/ova_format.h"
#include "utsushi/imagefmt/vmdk.h"

namespace utsushi::imagefmt {
namespace {

[[nodiscard]] Result<void> add_entry(archive* a, const std::string& name, std::uint64_t size) {
  auto* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_size(e, static_cast<la_int64_t>(size));
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  archive_entry_set_mtime(e, 0, 0);
  int r = archive_write_header(a, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK) {
    return fail(Errc::io_error, "ova: cannot add '" + name + "': " + archive_error_string(a));
  }
  return {};
}

[[nodiscard]] Result<void> add_bytes(archive* a, const std::string& name, const std::string& data) {
  UTSUSHI_TRY(add_entry(a, name, data.size()));
  if (archive_write_data(a, data.data(), data.size()) != static_cast<la_ssize_t>(data.size())) {
    return fail(Errc::io_error, "ova: cannot write '" + name + "': " + archive_error_string(a));
  }
  return {};
}

}  // namespace

Result<VmdkWriteStats> write_ova(BlockDevice& source, int fd, const std::string& temp_dir, const OvaWriteOptions& o) {
  if (o.cpus == 0) {
    return fail(Errc::invalid_argument, "ova: the virtual machine needs at least 1 CPU");
  }
  if (o.memory_mib == 0) {
    return fail(Errc::invalid_argument, "ova: the virtual machine needs at least 1 MiB of memory");
  }
  bool control = std::any_of(o.name.begin(), o.name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  if (o.name.empty() || o.name.find('/') != std::string::npos || control) {
    return fail(Errc::invalid_argument, "ova: bad virtual machine name '" + o.name + "'");
  }
  std::string disk_name = o.name + "-disk1.vmdk";
  auto tmp = UTSUSHI_TRY(AtomicFile::create((std::filesystem::path(temp_dir) / disk_name).string()));
  VmdkWriteOptions v;
  v.threads = o.threads;
  v.extent_name = disk_name;
  v.progress = o.progress;
  VmdkWriteStats stats = UTSUSHI_TRY(write_vmdk_stream_optimized(source, tmp.fd(), tmp.temp_path(), v));
  std::uint64_t vmdk_size = stats.file_size;
  // Hash the VMDK as written.
  auto disk_hash = UTSUSHI_TRY(ova::Digest::create(ova::DigestAlgorithm::sha256));
  std::vector<std::uint8_t> buf(4u << 20);
  for (std::uint64_t off = 0; off < vmdk_size;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), vmdk_size - off));
    UTSUSHI_TRY(pread_full(tmp.fd(), std::span(buf).first(n), off, tmp.temp_path()));
    disk_hash.update(std::span(buf).first(n));
    off += n;
  }
  std::string ovf = ova::write_ovf({.name = o.name,
                                    .cpus = o.cpus,
                                    .memory_mib = o.memory_mib,
                                    .disk_file = disk_name,
                                    .disk_file_size = vmdk_size,
                                    .capacity = source.size()});
  std::string ovf_name = o.name + ".ovf";
  std::string mf = ova::manifest_line(ova::DigestAlgorithm::sha256, ovf_name,
                                      UTSUSHI_TRY(ova::hex_digest_of(ova::DigestAlgorithm::sha256, ovf))) +
                   ova::manifest_line(ova::DigestAlgorithm::sha256, disk_name, UTSUSHI_TRY(disk_hash.hex_digest()));

  ArchiveWriter a(archive_write_new());
  if (!a || archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
      archive_write_open_fd(a.get(), fd) != ARCHIVE_OK) {
    return fail(Errc::io_error, "ova: cannot start the archive");
  }
  UTSUSHI_TRY(add_bytes(a.get(), ovf_name, ovf));
  UTSUSHI_TRY(add_bytes(a.get(), o.name + ".mf", mf));
  UTSUSHI_TRY(add_entry(a.get(), disk_name, vmdk_size));
  for (std::uint64_t off = 0; off < vmdk_size;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), vmdk_size - off));
    UTSUSHI_TRY(pread_full(tmp.fd(), std::span(buf).first(n), off, tmp.temp_path()));
    if (archive_write_data(a.get(), buf.data(), n) != static_cast<la_ssize_t>(n)) {
      return fail(Errc::io_error, std::string("ova: cannot write the disk: ") + archive_error_string(a.get()));
    }
    off += n;
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return fail(Errc::io_error, std::string("ova: cannot finish the archive: ") + archive_error_string(a.get()));
  }
  return stats;
}

}  // namespace utsushi::imagefmt
