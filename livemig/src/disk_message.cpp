#include "utsushi/livemig/disk_message.h"

#include <fmt/core.h>

#include <optional>

#include "utsushi/common/zstd_stream.h"

namespace utsushi::livemig {

namespace off = disk_offset;

namespace {

// What a batch's ranges hold: the bytes of `data` they need (data ranges'
// lengths, copy ranges' hashes) and the bytes they write (data and copy
// ranges' lengths). nullopt when a sum overflows.
struct RangeSums {
  std::uint64_t body = 0;
  std::uint64_t written = 0;
};

bool add(std::uint64_t& sum, std::uint64_t v) noexcept {
  if (v > UINT64_MAX - sum) {
    return false;
  }
  sum += v;
  return true;
}

std::optional<RangeSums> range_sums(std::span<const DiskRange> ranges) noexcept {
  RangeSums s;
  for (const auto& r : ranges) {
    if (r.kind == DiskRangeKind::zero) {
      continue;
    }
    // A copy range's length is checked to be a multiple of the block: no overflow in the division.
    std::uint64_t body = r.kind == DiskRangeKind::data ? r.length : r.length / k_disk_copy_block * k_disk_copy_hash;
    if (!add(s.body, body) || !add(s.written, r.length)) {
      return std::nullopt;
    }
  }
  return s;
}

bool known_kind(DiskRangeKind k) noexcept {
  return k == DiskRangeKind::data || k == DiskRangeKind::zero || k == DiskRangeKind::copy;
}

bool copy_aligned(const DiskRange& r) noexcept {
  return r.kind != DiskRangeKind::copy || (r.offset % k_disk_copy_align == 0 && r.length % k_disk_copy_block == 0);
}

Result<void> check_batch(const DiskBatch& b) {
  if (b.ranges.empty() || b.ranges.size() > k_max_disk_ranges) {
    return fail(Errc::invalid_argument, fmt::format("disk batch: {} ranges (1..{})", b.ranges.size(), k_max_disk_ranges));
  }
  for (const auto& r : b.ranges) {
    if (!range_inside(r.offset, r.length, UINT64_MAX) || !known_kind(r.kind) || !copy_aligned(r)) {
      return fail(Errc::invalid_argument, fmt::format("disk batch: bad range {}+{}", r.offset, r.length));
    }
  }
  auto sums = range_sums(b.ranges);
  if (!sums || sums->body != b.data.size() || sums->written > k_max_disk_data) {
    return fail(Errc::invalid_argument,
                fmt::format("disk batch: {} data bytes for ranges that need {} and write {} (at most {})",
                            b.data.size(), sums ? sums->body : UINT64_MAX, sums ? sums->written : UINT64_MAX,
                            k_max_disk_data));
  }
  return {};
}

Result<DiskRange> decode_range(std::span<const std::uint8_t> e, std::uint64_t disk_size) {
  DiskRange r{be64_at(e, off::range_offset), be64_at(e, off::range_length),
              static_cast<DiskRangeKind>(e[off::range_kind])};
  if (!known_kind(r.kind)) {
    return fail(Errc::corruption, fmt::format("disk message: range kind {}", e[off::range_kind]));
  }
  for (std::size_t i = off::range_reserved; i < k_disk_range_entry; ++i) {
    if (e[i] != 0) {
      return fail(Errc::corruption, "disk message: reserved bytes of a range are not zero");
    }
  }
  if (!range_inside(r.offset, r.length, disk_size)) {
    return fail(Errc::corruption,
                fmt::format("disk message: range {}+{} outside the disk's {} bytes", r.offset, r.length, disk_size));
  }
  if (!copy_aligned(r)) {
    return fail(Errc::corruption,
                fmt::format("disk message: copy range {}+{} is not {}-byte blocks at a multiple of {}", r.offset,
                            r.length, k_disk_copy_block, k_disk_copy_align));
  }
  return r;
}

}  // namespace

Result<void> encode_disk_batch(const DiskBatch& b, ZSTD_CCtx* cctx, Bytes& out) {
  UTSUSHI_TRY(check_batch(b));
  Bytes packed;
  DiskCodec codec = DiskCodec::raw;
  if (cctx != nullptr && !b.data.empty()) {
    UTSUSHI_TRY(zstd_compress_append(cctx, b.data, packed));
    codec = packed.size() < b.data.size() ? DiskCodec::zstd : DiskCodec::raw;
  }
  put_be32(out, b.disk);
  put_be32(out, static_cast<std::uint32_t>(b.ranges.size()));
  put_be32(out, static_cast<std::uint32_t>(b.data.size()));
  put_u8(out, static_cast<std::uint8_t>(codec));
  out.insert(out.end(), 3, 0);
  for (const auto& r : b.ranges) {
    put_be64(out, r.offset);
    put_be64(out, r.length);
    put_u8(out, static_cast<std::uint8_t>(r.kind));
    out.insert(out.end(), 7, 0);
  }
  put_bytes(out, codec == DiskCodec::zstd ? std::span<const std::uint8_t>(packed) : b.data);
  return {};
}

Result<DiskBatch> decode_disk_batch(std::span<const std::uint8_t> p, std::span<const std::uint64_t> disk_sizes,
                                    ZSTD_DCtx* dctx) {
  if (p.size() < k_disk_message_header) {
    return fail(Errc::corruption, fmt::format("disk message: {} bytes, shorter than its header", p.size()));
  }
  DiskBatch b;
  b.disk = be32_at(p, off::disk);
  std::uint32_t count = be32_at(p, off::count);
  std::uint32_t data_len = be32_at(p, off::data_len);
  auto codec = static_cast<DiskCodec>(p[off::codec]);
  if (b.disk >= disk_sizes.size()) {
    return fail(Errc::corruption, fmt::format("disk message: disk {} of {}", b.disk, disk_sizes.size()));
  }
  if (count == 0 || count > k_max_disk_ranges || data_len > k_max_disk_data ||
      (codec != DiskCodec::raw && codec != DiskCodec::zstd) || p[off::reserved] != 0 || p[off::reserved + 1] != 0 ||
      p[off::reserved + 2] != 0) {
    return fail(Errc::corruption, fmt::format("disk message: bad header ({} ranges, {} data bytes, codec {})", count,
                                              data_len, p[off::codec]));
  }
  std::size_t table = std::size_t{count} * k_disk_range_entry;  // at most 1.5 MiB: no overflow
  if (p.size() - k_disk_message_header < table) {
    return fail(Errc::corruption, fmt::format("disk message: truncated range table ({} ranges)", count));
  }
  b.ranges.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto entry = p.subspan(k_disk_message_header + i * k_disk_range_entry, k_disk_range_entry);
    b.ranges.push_back(UTSUSHI_TRY(decode_range(entry, disk_sizes[b.disk])));
  }
  auto sums = range_sums(b.ranges);
  if (!sums || sums->body != data_len) {
    return fail(Errc::corruption, fmt::format("disk message: data length {} does not match its ranges", data_len));
  }
  if (sums->written > k_max_disk_data) {
    return fail(Errc::corruption, fmt::format("disk message: its ranges write {} bytes (at most {})", sums->written,
                                              k_max_disk_data));
  }
  auto body = p.subspan(k_disk_message_header + table);
  if (codec == DiskCodec::raw) {
    if (body.size() != data_len) {
      return fail(Errc::corruption, fmt::format("disk message: {} data bytes, {} expected", body.size(), data_len));
    }
    b.data.assign(body.begin(), body.end());
    return b;
  }
  if (dctx == nullptr) {
    return fail(Errc::internal, "disk message: compressed, and no zstd context to decode it");
  }
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
  b.data.resize(data_len);
  UTSUSHI_TRY_CTX(zstd_decompress_exact(dctx, body, b.data, ZstdInput::whole), "disk message");
  return b;
}

}  // namespace utsushi::livemig
