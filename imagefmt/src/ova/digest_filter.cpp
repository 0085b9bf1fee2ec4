// Streaming manifest verification of one member (see digest_filter.h).
#include "digest_filter.h"

#include <vector>

namespace utsushi::imagefmt::ova {
namespace {
constexpr std::size_t k_hash_chunk = 1u << 20;
}  // namespace

DigestFilter::DigestFilter(std::unique_ptr<BlockDevice> member, Digest digest, ManifestEntry entry, std::string path,
                           std::string manifest_name)
    : FilterDriver(std::move(member)),
      m_digest(std::move(digest)),
      m_entry(std::move(entry)),
      m_path(std::move(path)),
      m_manifest_name(std::move(manifest_name)) {}

Result<std::unique_ptr<BlockDriver>> DigestFilter::create(std::unique_ptr<BlockDevice> member, ManifestEntry entry,
                                                          std::string path, std::string manifest_name) {
  Digest digest = UTSUSHI_TRY(Digest::create(entry.algorithm));
  return std::unique_ptr<BlockDriver>(new DigestFilter(std::move(member), std::move(digest), std::move(entry),
                                                       std::move(path), std::move(manifest_name)));
}

Result<void> DigestFilter::verdict() const {
  if (m_mismatch) {
    return std::unexpected(*m_mismatch);
  }
  return {};
}

Result<void> DigestFilter::hash_below(std::uint64_t end) {
  std::uint64_t pos = m_hashed.load();
  if (pos >= end) {
    return {};
  }
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(std::min<std::uint64_t>(k_hash_chunk, end - pos)));
  while (pos < end) {
    auto piece = std::span(buf).first(static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - pos)));
    UTSUSHI_TRY(below().pread(piece, pos));
    m_digest.update(piece);
    pos += piece.size();
    m_hashed.store(pos);
  }
  return {};
}

Result<void> DigestFilter::finish() {
  UTSUSHI_TRY(hash_below(size()));
  m_finished = true;
  std::string computed = UTSUSHI_TRY(m_digest.hex_digest());
  if (computed != m_entry.hex) {
    m_mismatch = digest_mismatch(m_path, m_manifest_name, m_entry, computed);
    m_failed.store(true);
  }
  return verdict();
}

Result<void> DigestFilter::account(std::span<const std::uint8_t> buf, std::uint64_t offset) {
  if (m_finished) {
    return verdict();
  }
  const std::uint64_t hashed = m_hashed.load();
  if (offset > hashed && offset - hashed > k_ova_digest_window) {
    return {};  // far ahead: hashed when the prefix gets here
  }
  UTSUSHI_TRY(hash_below(offset));
  if (offset + buf.size() > hashed) {
    std::uint64_t skip = m_hashed.load() - offset;
    m_digest.update(buf.subspan(static_cast<std::size_t>(skip)));
    m_hashed.store(offset + buf.size());
  }
  if (size() - m_hashed.load() <= k_ova_digest_window) {
    return finish();
  }
  return {};
}

Result<void> DigestFilter::pread(std::span<std::uint8_t> buf, std::uint64_t offset) {
  UTSUSHI_TRY(below().pread(buf, offset));
  if (offset + buf.size() <= m_hashed.load() && !m_failed.load()) {
    return {};
  }
  std::lock_guard lock(m_mutex);
  return account(buf, offset);
}

Result<void> DigestFilter::verify_integrity() {
  {
    std::lock_guard lock(m_mutex);
    if (!m_finished) {
      UTSUSHI_TRY(finish());
    }
    UTSUSHI_TRY(verdict());
  }
  return below().verify_integrity();
}

}  // namespace utsushi::imagefmt::ova
