// OVA writing and reading (see ova.h).
#include "utsushi/imagefmt/ova.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <vector>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/handles.h"
#include "utsushi/imagefmt/filter.h"
#include "utsushi/imagefmt/ova_format.h"
#include "utsushi/imagefmt/vmdk.h"

namespace utsushi::imagefmt {
namespace {

constexpr std::uint64_t k_tar_block = 512;

Result<void> add_entry(archive* a, const std::string& name, std::uint64_t size) {
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

Result<void> add_bytes(archive* a, const std::string& name, const std::string& data) {
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

namespace {

bool unsafe_name(const std::string& name) {
  if (name.empty() || name.front() == '/') {
    return true;
  }
  for (const auto& part : std::filesystem::path(name)) {
    if (part == "..") {
      return true;
    }
  }
  return false;
}

// The data offset of the member whose (first) header starts at `pos`:
// skips pax ('x', 'g') and GNU long-name ('L', 'K') headers.
Result<std::uint64_t> member_data_offset(BlockDevice& file, std::uint64_t pos, const std::string& path) {
  for (int i = 0; i < 8; ++i) {
    std::uint8_t h[k_tar_block];
    if (pos > file.size() || file.size() - pos < k_tar_block) {
      return fail(Errc::corruption, path + ": ova: truncated tar header");
    }
    UTSUSHI_TRY(file.pread(h, pos));
    char type = static_cast<char>(h[156]);
    if (type != 'x' && type != 'g' && type != 'L' && type != 'K') {
      return pos + k_tar_block;
    }
    std::uint64_t size = std::strtoull(std::string(reinterpret_cast<const char*>(h + 124), 12).c_str(), nullptr, 8);
    pos += k_tar_block + (size + k_tar_block - 1) / k_tar_block * k_tar_block;
  }
  return fail(Errc::corruption, path + ": ova: too many extended tar headers");
}

// libarchive reads the archive through the one device the OVA is opened as
// (no second open of the file); skips and seeks cost nothing, so indexing
// the members reads only their headers and the OVF.
struct ArchiveSource {
  BlockDevice* file = nullptr;
  std::uint64_t pos = 0;
  std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(64 * 1024);
  std::optional<Error> error;
};

la_ssize_t source_read(archive* a, void* p, const void** out) {
  auto* s = static_cast<ArchiveSource*>(p);
  std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(s->buf.size(), s->file->size() - s->pos));
  if (auto r = s->file->pread(std::span(s->buf).first(n), s->pos); !r) {
    archive_set_error(a, EIO, "%s", r.error().message().c_str());
    s->error = std::move(r).error();
    return -1;
  }
  s->pos += n;
  *out = s->buf.data();
  return static_cast<la_ssize_t>(n);
}

la_int64_t source_seek(archive*, void* p, la_int64_t offset, int whence) {
  auto* s = static_cast<ArchiveSource*>(p);
  std::int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? static_cast<std::int64_t>(s->pos)
                                                                   : static_cast<std::int64_t>(s->file->size());
  std::int64_t to = base + offset;
  if (to < 0 || static_cast<std::uint64_t>(to) > s->file->size()) {
    return ARCHIVE_FATAL;
  }
  s->pos = static_cast<std::uint64_t>(to);
  return to;
}

la_int64_t source_skip(archive*, void* p, la_int64_t n) {
  auto* s = static_cast<ArchiveSource*>(p);
  std::uint64_t step = std::min<std::uint64_t>(static_cast<std::uint64_t>(std::max<la_int64_t>(n, 0)),
                                               s->file->size() - s->pos);
  s->pos += step;
  return static_cast<la_int64_t>(step);
}

}  // namespace

// The OVA's disk as seen by callers: the VMDK member, reported as "ova" so
// that info and errors name the file the user gave.
class OvaDiskDriver final : public FilterDriver {
 public:
  using FilterDriver::FilterDriver;
  std::string_view format_name() const override { return "ova"; }
};

Result<std::unique_ptr<BlockDriver>> open_ova(const std::string& path, const OpenOptions& options, bool) {
  if (options.access == Access::read_write) {
    return fail(Errc::not_supported, path + ": OVA archives are opened read-only");
  }
  auto raw = UTSUSHI_TRY(open_raw(path, RawOpenOptions{Access::read_only, false}));
  auto file = std::make_unique<BlockDevice>(std::move(raw));
  ArchiveSource source;
  source.file = file.get();
  ArchiveReader a(archive_read_new());
  if (!a || archive_read_support_format_tar(a.get()) != ARCHIVE_OK ||
      archive_read_set_callback_data(a.get(), &source) != ARCHIVE_OK ||
      archive_read_set_read_callback(a.get(), source_read) != ARCHIVE_OK ||
      archive_read_set_seek_callback(a.get(), source_seek) != ARCHIVE_OK ||
      archive_read_set_skip_callback(a.get(), source_skip) != ARCHIVE_OK) {
    return fail(Errc::internal, path + ": ova: cannot set up libarchive");
  }
  if (archive_read_open1(a.get()) != ARCHIVE_OK) {
    if (source.error) {
      return std::unexpected(std::move(*source.error));
    }
    return fail(Errc::corruption, path + ": ova: " + archive_error_string(a.get()));
  }
  std::string ovf, disk_href;
  std::optional<std::uint64_t> disk_header, disk_size;
  bool first = true;
  archive_entry* e = nullptr;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    if (unsafe_name(name)) {
      return fail(Errc::corruption, path + ": ova: refusing member with an unsafe name '" + name + "'");
    }
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != nullptr) {
      return fail(Errc::corruption, path + ": ova: refusing member '" + name + "' that is not a regular file");
    }
    if (first) {
      if (!name.ends_with(".ovf")) {
        return fail(Errc::corruption, path + ": ova: the first member is '" + name + "', not the .ovf descriptor");
      }
      if (archive_entry_size(e) > (16 << 20)) {
        return fail(Errc::corruption, path + ": ova: OVF descriptor too large");
      }
      ovf.resize(static_cast<std::size_t>(archive_entry_size(e)));
      if (archive_read_data(a.get(), ovf.data(), ovf.size()) != static_cast<la_ssize_t>(ovf.size())) {
        return fail(Errc::corruption, path + ": ova: cannot read the OVF descriptor");
      }
      disk_href = UTSUSHI_TRY_CTX(ova::read_ovf_disk(ovf), path + ": ova: " + name).file;
      first = false;
      continue;
    }
    if (name == disk_href && !disk_header) {
      disk_header = static_cast<std::uint64_t>(archive_read_header_position(a.get()));
      disk_size = static_cast<std::uint64_t>(archive_entry_size(e));
    }
  }
  if (r != ARCHIVE_EOF) {
    if (source.error) {
      return std::unexpected(std::move(*source.error));
    }
    return fail(Errc::corruption, path + ": ova: " + archive_error_string(a.get()));
  }
  if (first) {
    return fail(Errc::corruption, path + ": ova: empty archive");
  }
  if (!disk_header) {
    return fail(Errc::corruption, path + ": ova: disk '" + disk_href + "' named in the OVF is not in the archive");
  }
  a.reset();  // done indexing; `source` no longer used
  std::uint64_t data = UTSUSHI_TRY(member_data_offset(*file, *disk_header, path));
  if (data > file->size() || *disk_size > file->size() - data) {
    return fail(Errc::corruption, path + ": ova: disk member extends past the end of the archive");
  }
  std::string desc = path + ":" + disk_href;
  auto window = UTSUSHI_TRY(WindowFilter::create(std::move(file), data, *disk_size, desc));
  auto member = std::make_unique<BlockDevice>(std::move(window));
  auto disk = UTSUSHI_TRY(open_vmdk_on(std::move(member), desc));
  return std::unique_ptr<BlockDriver>(std::make_unique<OvaDiskDriver>(std::make_unique<BlockDevice>(std::move(disk))));
}

}  // namespace utsushi::imagefmt
