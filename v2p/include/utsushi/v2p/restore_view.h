#pragma once
// RestoreView: a read-only device of the target's size that reads exactly as
// the target must after the data phase of a restore. Copying it onto the
// target with imagefmt's copy_device (discarding its holes) is the data phase.
//
// It is a list of segments in target offsets:
//   content  bytes of a source device (the image's used-blocks view, or a
//            staged partition), reported as data where the source has data
//            and as zero elsewhere;
//   zero     inside a partition but not copied (a grown partition's new
//            part, a filesystem re-made later): must read as zeros, so old
//            data never shows inside a restored filesystem;
//   free     outside every partition: a hole (the target discards it).
// On top of them lie the encoded partition table's sectors (each written
// whole: the table's bytes over what lies below, zeros in EBR sectors).
// Thread-safety: safe for concurrent use when the sources are.

#include <memory>
#include <vector>

#include "utsushi/disk/partition_table.h"
#include "utsushi/imagefmt/block_device.h"
#include "utsushi/v2p/layout_plan.h"

namespace utsushi::v2p {

struct ViewSegment {
  enum class Kind { content, zero, free };
  std::uint64_t offset = 0;  // on the target
  std::uint64_t length = 0;
  Kind kind = Kind::free;
  imagefmt::BlockDevice* source = nullptr;  // content only
  std::uint64_t source_offset = 0;
  std::uint64_t end() const noexcept { return offset + length; }
};

// Where the content of each partition comes from.
struct ContentSources {
  imagefmt::BlockDevice* image = nullptr;  // the image's used-blocks view (source offsets)
  // A partition shrunk before the copy: its staged used-blocks view (offset 0
  // is the partition's first byte), by partition number.
  std::vector<std::pair<unsigned, imagefmt::BlockDevice*>> staged;
};

// The segments of `plan` on its target, sorted and covering [0, target_size).
std::vector<ViewSegment> view_segments(const LayoutPlan& plan, const ContentSources& sources);

class RestoreView final : public imagefmt::BlockDriver {
 public:
  // `segments` from view_segments (the sources must outlive the view);
  // `table` from encode_partition_table(plan.target).
  RestoreView(std::vector<ViewSegment> segments, std::vector<disk::SectorWrite> table, std::uint64_t size,
              std::uint32_t sector_size);

  std::string_view format_name() const override { return "v2p-restore-view"; }
  const std::string& description() const override { return m_description; }
  std::uint64_t size() const override { return m_size; }
  imagefmt::Capabilities capabilities() const override;
  [[nodiscard]] Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) override;
  [[nodiscard]] Result<void> extents(std::uint64_t offset, std::uint64_t length,
                                     std::vector<imagefmt::Extent>& out) override;

 private:
  std::vector<ViewSegment> m_segments;
  std::vector<disk::SectorWrite> m_table;
  std::vector<disk::ByteRange> m_table_sectors;  // whole sectors the table touches, sorted, merged
  std::uint64_t m_size;
  std::string m_description = "the restored disk";
};

// The view of `plan` as a BlockDevice (encodes plan.target).
[[nodiscard]] Result<std::unique_ptr<imagefmt::BlockDevice>> make_restore_view(const LayoutPlan& plan,
                                                                               const ContentSources& sources);

}  // namespace utsushi::v2p
