// What livemig remembers about backing files between processes (disk_cache.h).
#include "utsushi/livemig/disk_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/fd.h"
#include "utsushi/common/log.h"

namespace utsushi::livemig {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view k_index_magic = "UTSBIDX2";
constexpr std::size_t k_index_header = 32;
constexpr std::size_t k_index_entry = 32;
constexpr std::size_t k_index_checksum = 8;
constexpr std::string_view k_hash_record_tag = "utsushi-file-hash 1";
constexpr std::uint64_t k_max_hash_record = 512;

std::mutex g_mutex;
std::string g_dir;            // under g_mutex
std::string g_refused;        // the directory last refused (warned once), under g_mutex

bool hash_less(const BlockHash& a, const BlockHash& b) noexcept {
  return a.high != b.high ? a.high < b.high : a.low < b.low;
}

// The cache directory when it may be used: created 0700 if missing, owned by
// this user, not writable by group or others. Empty otherwise.
std::string usable_dir() {
  std::lock_guard lock(g_mutex);
  if (g_dir.empty()) {
    return {};
  }
  std::error_code ec;
  if (!fs::exists(g_dir, ec)) {
    fs::create_directories(g_dir, ec);
    if (!ec) {
      ::chmod(g_dir.c_str(), 0700);
    }
  }
  struct stat st {};
  std::string why;
  if (::stat(g_dir.c_str(), &st) != 0) {
    why = std::strerror(errno);
  } else if (!S_ISDIR(st.st_mode)) {
    why = "not a directory";
  } else if (st.st_uid != ::geteuid()) {
    why = "owned by another user";
  } else if ((st.st_mode & 022) != 0) {
    why = "writable by group or others";
  }
  if (!why.empty()) {
    if (g_refused != g_dir) {
      g_refused = g_dir;
      UTSUSHI_LOG_WARN("the disk cache {} is not used: {}", g_dir, why);
    }
    return {};
  }
  return g_dir;
}

// The record at `path` when it is a regular file of at most `max_bytes`.
std::optional<Bytes> read_record(const std::string& path, std::uint64_t max_bytes) {
  auto fd = open_fd(path, O_RDONLY | O_NOFOLLOW);
  if (!fd) {
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    return std::nullopt;
  }
  Bytes b(static_cast<std::size_t>(st.st_size));
  if (!pread_full(fd->get(), b, 0, path)) {
    return std::nullopt;
  }
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // recently used: evicted last
  return b;
}

// Keeps the newest `keep` records whose names start with `prefix`.
void evict(const std::string& dir, std::string_view prefix, std::size_t keep) {
  std::vector<std::pair<fs::file_time_type, fs::path>> records;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().starts_with(prefix)) {
      records.emplace_back(e.last_write_time(ec), e.path());
    }
  }
  if (records.size() <= keep) {
    return;
  }
  std::sort(records.begin(), records.end());
  for (std::size_t i = 0; i + keep < records.size(); ++i) {
    fs::remove(records[i].second, ec);
  }
}

void write_record(const std::string& dir, const std::string& name, std::span<const std::uint8_t> bytes,
                  std::string_view prefix, std::size_t keep) {
  auto r = [&]() -> Result<void> {
    auto file = UTSUSHI_TRY(AtomicFile::create(dir + "/" + name));
    UTSUSHI_TRY(write_full(file.fd(), bytes, file.temp_path()));
    UTSUSHI_TRY(file.commit());
    return {};
  }();
  if (!r) {
    UTSUSHI_LOG_DEBUG("the disk cache: writing {}: {}", name, r.error().message());
    return;
  }
  evict(dir, prefix, keep);
}

std::string hash_record_name(const FileVersion& v) { return fmt::format("hash-{:x}-{}", v.device, v.inode); }

std::string index_record_name(const std::string& format, const std::string& content_hash, std::size_t cap) {
  return fmt::format("index-{}-{}-{}", format, content_hash, cap);
}

bool known_format(const std::string& format) { return format == "qcow2" || format == "raw"; }

}  // namespace

void set_disk_cache_dir(std::string dir) {
  std::lock_guard lock(g_mutex);
  g_dir = std::move(dir);
}

std::string disk_cache_dir() {
  std::lock_guard lock(g_mutex);
  return g_dir;
}

bool is_content_hash(std::string_view s) noexcept {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// ---- file hash records ----

std::string encode_file_hash(const FileVersion& v, const std::string& content_hash) {
  return fmt::format("{} {} {} {} {} {} {} {} {}\n", k_hash_record_tag, v.device, v.inode, v.size, v.mtime_s,
                     v.mtime_ns, v.ctime_s, v.ctime_ns, content_hash);
}

std::optional<std::string> decode_file_hash(std::string_view record, const FileVersion& v) {
  if (!record.starts_with(k_hash_record_tag) || !record.ends_with('\n')) {
    return std::nullopt;
  }
  std::istringstream in(std::string(record.substr(k_hash_record_tag.size())));
  FileVersion got;
  std::string hash;
  if (!(in >> got.device >> got.inode >> got.size >> got.mtime_s >> got.mtime_ns >> got.ctime_s >> got.ctime_ns >>
        hash)) {
    return std::nullopt;
  }
  std::string rest;
  if (in >> rest || !(got == v) || !is_content_hash(hash)) {
    return std::nullopt;
  }
  return hash;
}

std::optional<std::string> cached_file_hash(const FileVersion& v) {
  const std::string dir = usable_dir();
  if (dir.empty()) {
    return std::nullopt;
  }
  auto b = read_record(dir + "/" + hash_record_name(v), k_max_hash_record);
  return b ? decode_file_hash(as_text(*b), v) : std::nullopt;
}

void cache_file_hash(const FileVersion& v, const std::string& content_hash) {
  const std::string dir = usable_dir();
  if (dir.empty() || !is_content_hash(content_hash)) {
    return;
  }
  write_record(dir, hash_record_name(v), as_bytes(encode_file_hash(v, content_hash)), "hash-", k_max_cached_hashes);
}

// ---- block index records ----

Bytes encode_block_index(std::size_t cap, std::span<const IndexedBlock> entries) {
  Bytes out(k_index_header + entries.size() * k_index_entry + k_index_checksum);
  std::memcpy(out.data(), k_index_magic.data(), k_index_magic.size());
  out.resize(k_index_magic.size());
  put_le32(out, static_cast<std::uint32_t>(k_ref_block));
  put_le32(out, 0);
  put_le64(out, cap);
  put_le64(out, entries.size());
  for (const auto& e : entries) {
    put_le64(out, e.hash.low);
    put_le64(out, e.hash.high);
    put_le64(out, e.offset);
    put_le64(out, e.anchor);
  }
  put_le64(out, XXH3_64bits(out.data(), out.size()));
  return out;
}

Result<std::vector<IndexedBlock>> decode_block_index(std::span<const std::uint8_t> record, std::size_t cap,
                                                     std::uint64_t image_size) {
  if (record.size() < k_index_header + k_index_checksum) {
    return fail(Errc::corruption, "block index record: truncated");
  }
  if (!has_bytes_at(record, 0, k_index_magic)) {
    return fail(Errc::corruption, "block index record: bad magic");
  }
  if (le32_at(record, 8) != k_ref_block || le32_at(record, 12) != 0) {
    return fail(Errc::corruption, "block index record: another block size");
  }
  if (le64_at(record, 16) != cap) {
    return fail(Errc::corruption, "block index record: built with another cap");
  }
  const std::uint64_t n = le64_at(record, 24);
  if (n > cap || n > (record.size() - k_index_header - k_index_checksum) / k_index_entry ||
      record.size() != k_index_header + n * k_index_entry + k_index_checksum) {
    return fail(Errc::corruption, "block index record: its size does not match its entry count");
  }
  const std::size_t body = record.size() - k_index_checksum;
  if (le64_at(record, body) != XXH3_64bits(record.data(), body)) {
    return fail(Errc::corruption, "block index record: checksum mismatch");
  }
  std::vector<IndexedBlock> out(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::size_t at = k_index_header + i * k_index_entry;
    out[i] = {{le64_at(record, at), le64_at(record, at + 8)}, le64_at(record, at + 16), le64_at(record, at + 24)};
    if (out[i].offset % k_ref_block != 0 || out[i].offset > image_size || image_size - out[i].offset < k_ref_block) {
      return fail(Errc::corruption, fmt::format("block index record: entry {} lies outside the image", i));
    }
    if (i > 0 && !hash_less(out[i - 1].hash, out[i].hash)) {
      return fail(Errc::corruption, fmt::format("block index record: entry {} out of order", i));
    }
  }
  return out;
}

std::optional<std::vector<IndexedBlock>> cached_block_index(const std::string& format,
                                                            const std::string& content_hash, std::size_t cap,
                                                            std::uint64_t image_size) {
  const std::string dir = known_format(format) && is_content_hash(content_hash) ? usable_dir() : std::string();
  if (dir.empty()) {
    return std::nullopt;
  }
  const std::string name = index_record_name(format, content_hash, cap);
  const std::uint64_t max_bytes = k_index_header + static_cast<std::uint64_t>(k_index_entry) * cap + k_index_checksum;
  auto b = read_record(dir + "/" + name, max_bytes);
  if (!b) {
    return std::nullopt;
  }
  auto entries = decode_block_index(*b, cap, image_size);
  if (!entries) {
    UTSUSHI_LOG_DEBUG("the disk cache: {} is not used: {}", name, entries.error().message());
    return std::nullopt;
  }
  return std::move(*entries);
}

void cache_block_index(const std::string& format, const std::string& content_hash, std::size_t cap,
                       std::span<const IndexedBlock> entries) {
  const std::string dir = known_format(format) && is_content_hash(content_hash) ? usable_dir() : std::string();
  if (dir.empty()) {
    return;
  }
  write_record(dir, index_record_name(format, content_hash, cap), encode_block_index(cap, entries), "index-",
               k_max_cached_indexes);
}

}  // namespace utsushi::livemig
