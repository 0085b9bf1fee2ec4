// Indexing an OVA (see package.h).
#include "package.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "utsushi/common/handles.h"

namespace utsushi::imagefmt::ova {
namespace {

// ustar header (POSIX.1-2001 pax, "ustar Interchange Format"): 512-byte
// blocks; size field 12 octal digits at byte 124, typeflag at byte 156.
constexpr std::uint64_t k_tar_block = 512;
constexpr std::size_t k_tar_size_field = 124;
constexpr std::size_t k_tar_size_digits = 12;
constexpr std::size_t k_tar_typeflag = 156;
static_assert(k_tar_size_field + k_tar_size_digits <= k_tar_typeflag && k_tar_typeflag < k_tar_block);
constexpr int k_max_extended_headers = 8;

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
// skips pax ('x', 'g') and GNU long-name ('L', 'K') headers (POSIX.1-2001
// pax; GNU tar manual "Basic Tar Format").
[[nodiscard]] Result<std::uint64_t> member_data_offset(BlockDevice& file, std::uint64_t pos, const std::string& path) {
  for (int i = 0; i < k_max_extended_headers; ++i) {
    std::uint8_t h[k_tar_block];
    if (pos > file.size() || file.size() - pos < k_tar_block) {
      return fail(Errc::corruption, path + ": ova: truncated tar header");
    }
    UTSUSHI_TRY(file.pread(h, pos));
    char type = static_cast<char>(h[k_tar_typeflag]);
    if (type != 'x' && type != 'g' && type != 'L' && type != 'K') {
      return pos + k_tar_block;
    }
    std::uint64_t size = std::strtoull(
        std::string(reinterpret_cast<const char*>(h + k_tar_size_field), k_tar_size_digits).c_str(), nullptr, 8);
    if (size > file.size()) {
      return fail(Errc::corruption, path + ": ova: extended tar header larger than the archive");
    }
    pos += k_tar_block + (size + k_tar_block - 1) / k_tar_block * k_tar_block;
  }
  return fail(Errc::corruption, path + ": ova: too many extended tar headers");
}

// libarchive reads through the device the OVA is open as (no second open).
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

class Indexer {
 public:
  Indexer(BlockDevice& file, const std::string& path) : m_file(file) {
    m_pkg.path = path;
    m_source.file = &file;
  }
  [[nodiscard]] Result<Package> run();

 private:
  std::unexpected<Error> corrupt(const std::string& what) const {
    return fail(Errc::corruption, m_pkg.path + ": ova: " + what);
  }
  std::unexpected<Error> archive_failure() {
    if (m_source.error) {
      return std::unexpected(std::move(*m_source.error));
    }
    return corrupt(archive_error_string(m_archive.get()));
  }
  [[nodiscard]] Result<void> open();
  [[nodiscard]] Result<void> add(archive_entry* e);
  [[nodiscard]] Result<std::string> read_whole(const std::string& name, la_int64_t size, std::uint64_t limit);
  [[nodiscard]] Result<void> check_manifest();

  BlockDevice& m_file;
  ArchiveSource m_source;
  ArchiveReader m_archive;
  Package m_pkg;
  std::vector<std::uint64_t> m_header_pos;  // per member: where its (first) header starts
  std::set<std::string, std::less<>> m_names;
  std::optional<std::string> m_manifest_text;
};

Result<void> Indexer::open() {
  m_archive.reset(archive_read_new());
  archive* a = m_archive.get();
  if (!a || archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_set_callback_data(a, &m_source) != ARCHIVE_OK ||
      archive_read_set_read_callback(a, source_read) != ARCHIVE_OK ||
      archive_read_set_seek_callback(a, source_seek) != ARCHIVE_OK ||
      archive_read_set_skip_callback(a, source_skip) != ARCHIVE_OK) {
    return fail(Errc::internal, m_pkg.path + ": ova: cannot set up libarchive");
  }
  if (archive_read_open1(a) != ARCHIVE_OK) {
    return archive_failure();
  }
  return {};
}

Result<std::string> Indexer::read_whole(const std::string& name, la_int64_t size, std::uint64_t limit) {
  if (size < 0 || static_cast<std::uint64_t>(size) > limit) {
    return corrupt("'" + name + "' is larger than " + std::to_string(limit) + " bytes");
  }
  std::string text(static_cast<std::size_t>(size), '\0');
  if (archive_read_data(m_archive.get(), text.data(), text.size()) != static_cast<la_ssize_t>(text.size())) {
    if (m_source.error) {
      return std::unexpected(std::move(*m_source.error));
    }
    return corrupt("cannot read '" + name + "'");
  }
  return text;
}

Result<void> Indexer::add(archive_entry* e) {
  std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
  if (unsafe_name(name)) {
    return corrupt("refusing member with an unsafe name '" + name + "'");
  }
  if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != nullptr) {
    return corrupt("refusing member '" + name + "' that is not a regular file");
  }
  if (!m_names.insert(name).second) {
    return corrupt("member '" + name + "' appears twice");
  }
  const bool first = m_pkg.members.empty();
  m_pkg.members.push_back({name, 0, static_cast<std::uint64_t>(archive_entry_size(e))});
  m_header_pos.push_back(static_cast<std::uint64_t>(archive_read_header_position(m_archive.get())));
  if (first) {
    if (!name.ends_with(".ovf")) {
      return corrupt("the first member is '" + name + "', not the .ovf descriptor");
    }
    m_pkg.descriptor_name = name;
    m_pkg.descriptor = UTSUSHI_TRY(read_whole(name, archive_entry_size(e), k_max_descriptor_bytes));
    m_pkg.disk = UTSUSHI_TRY_CTX(read_ovf_disk(m_pkg.descriptor), m_pkg.path + ": ova: " + name);
  } else if (name.ends_with(".mf")) {
    if (m_pkg.manifest_name) {
      return corrupt("two manifests, '" + *m_pkg.manifest_name + "' and '" + name + "'");
    }
    m_pkg.manifest_name = name;
    m_manifest_text = UTSUSHI_TRY(read_whole(name, archive_entry_size(e), k_max_manifest_bytes));
  }
  return {};
}

Result<void> Indexer::check_manifest() {
  if (!m_pkg.manifest_name) {
    return {};
  }
  const std::string& mf = *m_pkg.manifest_name;
  m_pkg.manifest = UTSUSHI_TRY_CTX(parse_manifest(*m_manifest_text), m_pkg.path + ": ova: " + mf);
  for (const ManifestEntry& entry : m_pkg.manifest) {
    if (m_pkg.member(entry.file) == nullptr) {
      return corrupt(mf + " line " + std::to_string(entry.line) + " lists '" + entry.file +
                     "', which is not in the archive");
    }
  }
  for (const std::string* needed : {&m_pkg.descriptor_name, &m_pkg.disk.file}) {
    if (m_pkg.listed(*needed) == nullptr) {
      return corrupt(mf + " does not list '" + *needed + "'");
    }
  }
  return {};
}

Result<Package> Indexer::run() {
  UTSUSHI_TRY(open());
  archive_entry* e = nullptr;
  int r;
  while ((r = archive_read_next_header(m_archive.get(), &e)) == ARCHIVE_OK) {
    UTSUSHI_TRY(add(e));
  }
  if (r != ARCHIVE_EOF) {
    return archive_failure();
  }
  m_archive.reset();  // done; the rest reads the device directly
  if (m_pkg.members.empty()) {
    return corrupt("empty archive");
  }
  for (std::size_t i = 0; i < m_pkg.members.size(); ++i) {
    Member& m = m_pkg.members[i];
    m.data_offset = UTSUSHI_TRY(member_data_offset(m_file, m_header_pos[i], m_pkg.path));
    if (m.data_offset > m_file.size() || m.size > m_file.size() - m.data_offset) {
      return corrupt("member '" + m.name + "' extends past the end of the archive");
    }
  }
  if (m_pkg.member(m_pkg.disk.file) == nullptr) {
    return corrupt("disk '" + m_pkg.disk.file + "' named in the OVF is not in the archive");
  }
  UTSUSHI_TRY(check_manifest());
  return std::move(m_pkg);
}

}  // namespace

const Member* Package::member(std::string_view name) const {
  auto it = std::find_if(members.begin(), members.end(), [&](const Member& m) { return m.name == name; });
  return it == members.end() ? nullptr : &*it;
}

const ManifestEntry* Package::listed(std::string_view name) const {
  auto it = std::find_if(manifest.begin(), manifest.end(), [&](const ManifestEntry& m) { return m.file == name; });
  return it == manifest.end() ? nullptr : &*it;
}

Result<Package> read_package(BlockDevice& file, const std::string& path) { return Indexer(file, path).run(); }

Error digest_mismatch(std::string_view path, std::string_view manifest_name, const ManifestEntry& entry,
                      std::string_view computed) {
  return Error(Errc::corruption, std::string(path) + ": ova: member '" + entry.file + "' does not match the manifest: " +
                                     std::string(digest_name(entry.algorithm)) + " " + std::string(computed) + ", " +
                                     std::string(manifest_name) + " line " + std::to_string(entry.line) + " says " +
                                     entry.hex);
}

Result<void> verify_descriptor(const Package& package) {
  const ManifestEntry* entry = package.listed(package.descriptor_name);
  if (entry == nullptr) {
    return {};
  }
  std::string computed = UTSUSHI_TRY(hex_digest_of(entry->algorithm, package.descriptor));
  if (computed != entry->hex) {
    return std::unexpected(digest_mismatch(package.path, *package.manifest_name, *entry, computed));
  }
  return {};
}

}  // namespace utsushi::imagefmt::ova
