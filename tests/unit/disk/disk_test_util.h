#pragma once
// Helpers for the disk unit tests: open small disk images built with the
// standard tools (mkfs.*, sfdisk, mtools, ntfscp, debugfs), plan them, and
// write their used-block view to a raw image.
#include <string>

#include "test_support.h"
#include "utsushi/disk/disk_plan.h"
#include "utsushi/disk/partition_table.h"
#include "utsushi/disk/used_blocks_filter.h"
#include "utsushi/imagefmt/copy.h"
#include "utsushi/imagefmt/raw.h"

namespace utsushi::disk::test {

using utsushi::test::have;
using utsushi::test::sh;

// A disk image file opened read-only.
inline Result<std::unique_ptr<imagefmt::BlockDevice>> open_disk(const std::string& path) {
  auto driver = UTSUSHI_TRY(imagefmt::open_raw(path, imagefmt::RawOpenOptions{imagefmt::Access::read_only}));
  return std::make_unique<imagefmt::BlockDevice>(std::move(driver));
}

// The plan of a disk image file.
inline Result<DiskPlan> plan_file(const std::string& path) {
  auto dev = UTSUSHI_TRY(open_disk(path));
  return plan_disk(*dev, path);
}

struct Captured {
  DiskPlan plan;
};

// Plans `path` and writes its used-block view to the raw image `out`.
inline Result<Captured> capture_raw(const std::string& path, const std::string& out) {
  auto dev = UTSUSHI_TRY(open_disk(path));
  Captured c{UTSUSHI_TRY(plan_disk(*dev, path))};
  auto view = make_used_view(*dev, c.plan.used);
  utsushi::test::make_sparse_file(out, dev->size());
  auto driver = UTSUSHI_TRY(imagefmt::open_raw(out, imagefmt::RawOpenOptions{imagefmt::Access::read_write}));
  imagefmt::BlockDevice target(std::move(driver));
  UTSUSHI_TRY(imagefmt::copy_device(*view, target));
  return c;
}

inline constexpr std::uint64_t MiB = 1u << 20;

// A GPT with sfdisk's geometry (first usable LBA 2048, 128 entries) for a
// disk of `disk_size` bytes (512-byte sectors), without partitions.
inline PartitionTable empty_gpt(std::uint64_t disk_size) {
  PartitionTable t;
  t.kind = TableKind::gpt;
  t.disk_size = disk_size;
  t.disk_id = "01234567-89ab-cdef-0123-456789abcdef";
  const std::uint64_t sectors = disk_size / 512;
  t.gpt = {2048, sectors - 34, 2, sectors - 1, sectors - 33, 128, 128};
  return t;
}

// Writes `t` into `path` (created sparse with t.disk_size bytes when missing).
inline Result<void> write_table_file(const PartitionTable& t, const std::string& path) {
  if (sh("test -e " + path) != 0) {
    utsushi::test::make_sparse_file(path, t.disk_size);
  }
  auto driver = UTSUSHI_TRY(imagefmt::open_raw(path, imagefmt::RawOpenOptions{imagefmt::Access::read_write}));
  imagefmt::BlockDevice dev(std::move(driver));
  return write_partition_table(dev, t);
}

// The partition table of the disk image `path`.
inline Result<PartitionTable> read_table_file(const std::string& path) {
  auto dev = UTSUSHI_TRY(open_disk(path));
  return read_partition_table(*dev);
}

}  // namespace utsushi::disk::test
