// OVA reading and checking (see ova.h): the package indexed (package.h), the
// descriptor's digest compared at once, the disk read in place through the
// VMDK driver with its digest verified as it is read (digest_filter.h).
#include <algorithm>

#include "digest_filter.h"
#include "package.h"
#include "utsushi/imagefmt/filter.h"
#include "utsushi/imagefmt/ova.h"
#include "utsushi/imagefmt/vmdk.h"

namespace utsushi::imagefmt {
namespace {

constexpr std::size_t k_check_chunk = 4u << 20;

// The OVA's disk as seen by callers: the VMDK member, reported as "ova" so
// that info and errors name the file the user gave.
class OvaDiskDriver final : public FilterDriver {
 public:
  using FilterDriver::FilterDriver;
  std::string_view format_name() const override { return "ova"; }
};

// The disk member of `package` as a VMDK device over `window` (the member's
// bytes), behind a DigestFilter when the manifest lists it.
[[nodiscard]] Result<std::unique_ptr<BlockDriver>> open_disk(std::unique_ptr<BlockDriver> window,
                                                             const ova::Package& package) {
  const std::string desc = package.path + ":" + package.disk.file;
  auto member = std::make_unique<BlockDevice>(std::move(window));
  if (const ova::ManifestEntry* entry = package.listed(package.disk.file)) {
    auto filter = UTSUSHI_TRY(ova::DigestFilter::create(std::move(member), *entry, package.path,
                                                         *package.manifest_name));
    member = std::make_unique<BlockDevice>(std::move(filter));
  }
  auto disk = UTSUSHI_TRY(open_vmdk_on(std::move(member), desc));
  return std::unique_ptr<BlockDriver>(std::make_unique<OvaDiskDriver>(std::make_unique<BlockDevice>(std::move(disk))));
}

// Reads a whole member once, comparing its digest with the manifest's.
[[nodiscard]] Result<void> verify_member(BlockDevice& file, const ova::Package& package,
                                         const ova::ManifestEntry& entry) {
  const ova::Member& m = *package.member(entry.file);
  auto digest = UTSUSHI_TRY(ova::Digest::create(entry.algorithm));
  std::vector<std::uint8_t> buf(k_check_chunk);
  for (std::uint64_t pos = 0; pos < m.size;) {
    auto piece = std::span(buf).first(static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), m.size - pos)));
    UTSUSHI_TRY(file.pread(piece, m.data_offset + pos));
    digest.update(piece);
    pos += piece.size();
  }
  std::string computed = UTSUSHI_TRY(digest.hex_digest());
  if (computed != entry.hex) {
    return std::unexpected(ova::digest_mismatch(package.path, *package.manifest_name, entry, computed));
  }
  return {};
}

// Reads every data extent of the disk, then asks for the whole-file verdict.
[[nodiscard]] Result<void> read_whole_disk(BlockDevice& disk) {
  std::vector<std::uint8_t> buf(k_check_chunk);
  for (const Extent& e : UTSUSHI_TRY(disk.extents())) {
    if (e.type != ExtentType::data) {
      continue;
    }
    for (std::uint64_t pos = e.offset; pos < e.offset + e.length;) {
      auto piece = std::span(buf).first(
          static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), e.offset + e.length - pos)));
      UTSUSHI_TRY(disk.pread(piece, pos));
      pos += piece.size();
    }
  }
  return disk.verify_integrity();
}

void record(CheckReport& report, const Error& e) {
  ++(e.code() == Errc::corruption ? report.corruptions : report.check_errors);
  report.messages.push_back("ERROR " + e.message());
}

}  // namespace

Result<std::unique_ptr<BlockDriver>> open_ova(const std::string& path, const OpenOptions& options, bool) {
  if (options.access == Access::read_write) {
    return fail(Errc::not_supported, path + ": OVA archives are opened read-only");
  }
  auto raw = UTSUSHI_TRY(open_raw(path, RawOpenOptions{Access::read_only, false}));
  auto file = std::make_unique<BlockDevice>(std::move(raw));
  ova::Package package = UTSUSHI_TRY(ova::read_package(*file, path));
  UTSUSHI_TRY(ova::verify_descriptor(package));
  const ova::Member& m = *package.member(package.disk.file);
  auto window = UTSUSHI_TRY(WindowFilter::create(std::move(file), m.data_offset, m.size, path + ":" + m.name));
  return open_disk(std::move(window), package);
}

Result<CheckReport> check_ova(const std::string& path) {
  auto raw = UTSUSHI_TRY(open_raw(path, RawOpenOptions{Access::read_only, false}));
  BlockDevice file(std::move(raw));
  ova::Package package = UTSUSHI_TRY(ova::read_package(file, path));
  CheckReport report;
  report.image_end_offset = file.size();
  if (auto r = ova::verify_descriptor(package); !r) {
    record(report, r.error());
  }
  for (const ova::ManifestEntry& entry : package.manifest) {
    if (entry.file == package.descriptor_name || entry.file == package.disk.file) {
      continue;  // the descriptor above, the disk below
    }
    if (auto r = verify_member(file, package, entry); !r) {
      record(report, r.error());
    }
  }
  const ova::Member& m = *package.member(package.disk.file);
  auto verified = [&]() -> Result<void> {
    auto window = UTSUSHI_TRY(WindowFilter::create(file, m.data_offset, m.size, path + ":" + m.name));
    BlockDevice disk(UTSUSHI_TRY(open_disk(std::move(window), package)));
    return read_whole_disk(disk);
  }();
  if (!verified) {
    record(report, verified.error());
  }
  return report;
}

}  // namespace utsushi::imagefmt
