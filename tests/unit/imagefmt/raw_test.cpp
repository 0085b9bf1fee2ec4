#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "test_support.h"
#include "utsushi/common/process.h"
#include "utsushi/imagefmt/block_device.h"
#include "utsushi/imagefmt/raw.h"

using namespace utsushi;
using namespace utsushi::imagefmt;

namespace {

std::unique_ptr<BlockDevice> open_dev(const std::string& path, Access access, bool probed = false) {
  auto d = open_raw(path, RawOpenOptions{access, probed});
  REQUIRE(d);
  return std::make_unique<BlockDevice>(std::move(*d));
}

std::uint64_t allocated(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

}  // namespace

TEST_CASE("raw: a sparse file reports holes and data through SEEK_DATA", "[raw]") {
  test::TempDir dir;
  std::string path = dir.file("disk.raw");
  test::make_sparse_file(path, 64 << 20);
  test::write_at(path, 8 << 20, test::pattern(1 << 20, 1));
  auto dev = open_dev(path, Access::read_only);
  CHECK(dev->size() == (64u << 20));
  CHECK(dev->capabilities().can_extents);
  auto e = dev->extents();
  REQUIRE(e);
  std::vector<Extent> want = {{0, 8 << 20, ExtentType::hole},
                              {8 << 20, 1 << 20, ExtentType::data, 8 << 20},
                              {9 << 20, 55 << 20, ExtentType::hole}};
  CHECK(*e == want);
}

TEST_CASE("raw: zero with may_unmap punches a hole that reads back as zeros", "[raw]") {
  test::TempDir dir;
  std::string path = dir.file("disk.raw");
  test::make_sparse_file(path, 16 << 20);
  test::write_at(path, 0, test::pattern(16 << 20, 2));
  auto before = allocated(path);
  auto dev = open_dev(path, Access::read_write);
  REQUIRE(dev->zero(4 << 20, 8 << 20, ZeroMode::may_unmap));
  REQUIRE(dev->flush());
  CHECK(allocated(path) <= before - (8u << 20));
  std::vector<std::uint8_t> buf(8 << 20);
  REQUIRE(dev->pread(buf, 4 << 20));
  CHECK(std::all_of(buf.begin(), buf.end(), [](auto c) { return c == 0; }));
  auto e = dev->extents(4 << 20, 8 << 20);
  REQUIRE(e);
  REQUIRE(e->size() == 1);
  CHECK((*e)[0].type == ExtentType::hole);
}

TEST_CASE("raw: a read-only open refuses writes", "[raw]") {
  test::TempDir dir;
  std::string path = dir.file("disk.raw");
  test::make_sparse_file(path, 1 << 20);
  auto dev = open_dev(path, Access::read_only);
  std::vector<std::uint8_t> buf(512, 1);
  CHECK_FALSE(dev->pwrite(buf, 0));
}

TEST_CASE("raw: a probed raw image refuses a write that would make it qcow2", "[raw]") {
  test::TempDir dir;
  std::string path = dir.file("disk.raw");
  test::make_sparse_file(path, 1 << 20);
  auto dev = open_dev(path, Access::read_write, /*probed=*/true);
  std::vector<std::uint8_t> header(512, 0);
  std::memcpy(header.data(), "QFI\xfb\0\0\0\3", 8);
  auto r = dev->pwrite(header, 0);
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("qcow2") != std::string::npos);
  std::vector<std::uint8_t> ordinary(512, 0x55);
  CHECK(dev->pwrite(ordinary, 0));      // an ordinary boot sector is fine
  auto named = open_dev(path, Access::read_write, /*probed=*/false);
  CHECK(named->pwrite(header, 0));      // and a named raw format may write anything
}

TEST_CASE("raw: neither a file nor a block device is refused", "[raw]") {
  auto r = open_raw("/dev/null");
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("'/dev/null' is a character device") != std::string::npos);
}

TEST_CASE("raw: block device size, BLKZEROOUT and discard on a loop device", "[raw][root]") {
  test::TempDir dir;
  std::string backing = dir.file("backing.img");
  test::make_sparse_file(backing, 32 << 20);
  test::write_at(backing, 0, test::pattern(32 << 20, 9));
  std::string why;
  auto loop = test::LoopDevice::attach(backing, why);
  if (!loop) {
    WARN("skipped: " << why);
    return;
  }
  CHECK(is_block_device(loop->path()));
  auto dev = open_dev(loop->path(), Access::read_write);
  CHECK(dev->size() == (32u << 20));
  CHECK_FALSE(dev->capabilities().can_extents);  // whole device is data
  // Unaligned zero: BLKZEROOUT in the middle, written edges.
  REQUIRE(dev->zero(1000, (4 << 20) + 100));
  REQUIRE(dev->discard(8 << 20, 1 << 20));  // advisory; must not fail
  REQUIRE(dev->flush());
  std::vector<std::uint8_t> buf((4 << 20) + 100);
  REQUIRE(dev->pread(buf, 1000));
  CHECK(std::all_of(buf.begin(), buf.end(), [](auto c) { return c == 0; }));
  std::vector<std::uint8_t> edge(2);
  REQUIRE(dev->pread(edge, 999));
  CHECK(edge[0] != 0);
  REQUIRE(dev->pread(edge, 1000 + (4 << 20) + 100));
  CHECK(edge[0] != 0);
}

TEST_CASE("raw: a mounted block device is refused for writing, allowed for reading", "[raw][root]") {
  test::TempDir dir;
  std::string backing = dir.file("fs.img");
  test::make_sparse_file(backing, 32 << 20);
  auto mk = run_process({"mkfs.ext4", "-q", "-F", backing});
  REQUIRE(mk);
  REQUIRE(mk->ok());
  std::string why;
  auto loop = test::LoopDevice::attach(backing, why);
  if (!loop) {
    WARN("skipped: " << why);
    return;
  }
  std::string mnt = dir.file("mnt");
  ::mkdir(mnt.c_str(), 0755);
  REQUIRE(::mount(loop->path().c_str(), mnt.c_str(), "ext4", MS_RDONLY, nullptr) == 0);
  auto busy = block_device_busy_reason(loop->path());
  auto rw = open_raw(loop->path(), RawOpenOptions{Access::read_write, false});
  auto ro = open_raw(loop->path(), RawOpenOptions{Access::read_only, false});
  ::umount(mnt.c_str());
  REQUIRE(busy);
  CHECK(busy->find("mounted at " + mnt) != std::string::npos);
  REQUIRE_FALSE(rw);
  CHECK(rw.error().code() == Errc::failed_precondition);
  CHECK(rw.error().message().find("mounted") != std::string::npos);
  CHECK(ro);
  // Once unmounted, writing is allowed.
  CHECK(open_raw(loop->path(), RawOpenOptions{Access::read_write, false}));
}
