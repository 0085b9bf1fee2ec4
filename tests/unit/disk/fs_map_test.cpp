// Used-block maps on small real filesystems built with the standard tools:
// each is captured to a raw image, which must check clean with the
// filesystem's own checker, hold every file, and not hold deleted data.
#include <catch2/catch.hpp>

#include <chrono>

#include <fstream>

#include "disk_test_util.h"
#include "test_support.h"

using namespace utsushi;
using utsushi::disk::VolumeMap;
using utsushi::disk::DiskPlan;
using disk::test::have;
using disk::test::sh;

namespace {

constexpr const char* k_marker = "P2V-DELETED-MARKER";

// A directory of files (a few MiB) plus one file of marked data to delete later.
void make_tree(const std::string& dir) {
  REQUIRE(sh("mkdir -p " + dir + "/sub && head -c 3000000 /dev/urandom > " + dir + "/a.bin && "
             "head -c 70000 /dev/urandom > " + dir + "/sub/b.bin && echo hello > " + dir + "/sub/c.txt") == 0);
}
void make_marked(const std::string& path, int mib) {
  REQUIRE(sh("python3 -c \"import sys; sys.stdout.write(('" + std::string(k_marker) +
             "' + 'x'*4078 + '\\n') * " + std::to_string(mib * 256) + ")\" > " + path) == 0);
}
bool image_has_marker(const std::string& image) {
  return sh(std::string("grep -q -a ") + k_marker + " " + image) == 0;
}

VolumeMap only_volume(const DiskPlan& p) {
  REQUIRE(p.volumes.size() == 1);
  return p.volumes[0];
}

}  // namespace

TEST_CASE("disk::map_ext on ext2/3/4 feature variants", "[disk][ext4]") {
  if (!have("mkfs.ext4") || !have("e2fsck")) {
    WARN("e2fsprogs missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  make_tree(dir.file("tree"));
  make_marked(dir.file("tree/gone.bin"), 4);
  struct Variant {
    const char* name;
    const char* mkfs;
  };
  const Variant variants[] = {
      {"ext4 default", "mkfs.ext4 -q"},
      {"ext4 ^flex_bg", "mkfs.ext4 -q -O ^flex_bg"},
      {"ext4 64bit 1k blocks", "mkfs.ext4 -q -O 64bit -b 1024"},
      {"ext4 bigalloc", "mkfs.ext4 -q -O bigalloc -C 65536"},
      {"ext4 gdt_csum (no metadata_csum)", "mkfs.ext4 -q -O ^metadata_csum,uninit_bg"},
      {"ext3", "mkfs.ext3 -q"},
      {"ext2", "mkfs.ext2 -q"},
  };
  for (const Variant& v : variants) {
    DYNAMIC_SECTION(v.name) {
      std::string img = dir.file("fs.img"), out = dir.file("out.raw");
      REQUIRE(sh("rm -f " + img + " && truncate -s 64M " + img + " && " + v.mkfs + " -d " + dir.file("tree") + " " +
                 img) == 0);
      // Delete the marked file: its blocks become free but keep the marker.
      REQUIRE(sh("debugfs -w -R 'rm /gone.bin' " + img) == 0);
      REQUIRE(image_has_marker(img));
      auto r = disk::test::capture_raw(img, out);
      REQUIRE(r);
      VolumeMap m = only_volume(r->plan);
      CHECK(m.filesystem.rfind("ext", 0) == 0);
      CHECK_FALSE(m.full_copy);
      INFO(m.note);
      CHECK(m.used.total() < 20u << 20);
      CHECK(sh("e2fsck -fn " + out) == 0);
      CHECK_FALSE(image_has_marker(out));
      CHECK(sh("debugfs -R 'cat /a.bin' " + out + " | cmp - " + dir.file("tree/a.bin")) == 0);
    }
  }
}

TEST_CASE("disk::map_ext falls back to a full copy on dirty or inconsistent filesystems", "[disk][ext4]") {
  if (!have("mkfs.ext4") || !have("debugfs")) {
    WARN("e2fsprogs missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  std::string img = dir.file("fs.img");
  REQUIRE(sh("truncate -s 32M " + img + " && mkfs.ext4 -q -b 4096 -O ^metadata_csum " + img) == 0);
  SECTION("clean: mapped") {
    auto p = disk::test::plan_file(img);
    REQUIRE(p);
    CHECK_FALSE(only_volume(*p).full_copy);
  }
  SECTION("dirty state") {
    REQUIRE(sh("debugfs -w -R 'ssv state 0' " + img) == 0);
    auto p = disk::test::plan_file(img);
    REQUIRE(p);
    VolumeMap m = only_volume(*p);
    CHECK(m.full_copy);
    CHECK(m.note.find("dirty") != std::string::npos);
    CHECK(m.used.total() == 32u << 20);
  }
  SECTION("superblock free count disagrees with the maps") {
    REQUIRE(sh("debugfs -w -R 'ssv free_blocks_count 17' " + img) == 0);
    auto p = disk::test::plan_file(img);
    REQUIRE(p);
    CHECK(only_volume(*p).full_copy);
    CHECK_FALSE(p->warnings.empty());
  }
  SECTION("a group's free count disagrees with its bitmap") {
    REQUIRE(sh("debugfs -w -R 'set_bg 0 free_blocks_count 3' " + img) == 0);
    auto p = disk::test::plan_file(img);
    REQUIRE(p);
    CHECK(only_volume(*p).full_copy);
  }
  SECTION("garbage group descriptors") {
    REQUIRE(sh("head -c 4096 /dev/urandom | dd of=" + img + " bs=4096 seek=1 conv=notrunc") == 0);
    auto p = disk::test::plan_file(img);
    REQUIRE(p);  // never a crash
    CHECK(only_volume(*p).full_copy);
  }
}

TEST_CASE("disk::map_ext bounds the group descriptor table by the first group", "[disk][ext4]") {
  if (!have("mkfs.ext4") || !have("debugfs")) {
    WARN("e2fsprogs missing; skipped");
    return;
  }
  // 256 GiB (sparse) with 8 blocks per group claims 8 Mi groups: a 256 MiB
  // descriptor table that cannot follow the superblock inside group 0. It
  // must be refused from the superblock alone, before anything is read.
  utsushi::test::TempDir dir;
  std::string img = dir.file("fs.img");
  REQUIRE(sh("truncate -s 256G " + img + " && mkfs.ext4 -q -b 4096 -O ^metadata_csum -E lazy_itable_init=1 " + img +
             " && debugfs -w -R 'ssv blocks_per_group 8' " + img) == 0);
  auto t0 = std::chrono::steady_clock::now();
  auto p = disk::test::plan_file(img);
  REQUIRE(p);
  VolumeMap m = only_volume(*p);
  CHECK(m.full_copy);
  CHECK(m.note.find("group descriptor table") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  SECTION("blocks per group beyond what one bitmap block can describe") {
    REQUIRE(sh("debugfs -w -R 'ssv blocks_per_group 40000' " + img) == 0);
    auto q = disk::test::plan_file(img);
    REQUIRE(q);
    CHECK(only_volume(*q).full_copy);
  }
}

TEST_CASE("disk::map_ext verifies metadata_csum checksums", "[disk][ext4]") {
  if (!have("mkfs.ext4")) {
    return;
  }
  utsushi::test::TempDir dir;
  std::string img = dir.file("fs.img");
  REQUIRE(sh("truncate -s 32M " + img + " && mkfs.ext4 -q -b 4096 -O metadata_csum " + img) == 0);
  // Flip one byte of the first group descriptor (bg_flags): its crc32c no longer matches.
  REQUIRE(sh("printf '\\x07' | dd of=" + img + " bs=1 seek=$((4096+0x12)) conv=notrunc") == 0);
  auto p = disk::test::plan_file(img);
  REQUIRE(p);
  VolumeMap m = only_volume(*p);
  CHECK(m.full_copy);
  CHECK(m.note.find("checksum") != std::string::npos);
}

TEST_CASE("disk::map_fat on FAT12, FAT16 and FAT32", "[disk][fat]") {
  if (!have("mkfs.vfat") || !have("mcopy") || !have("fsck.vfat")) {
    WARN("dosfstools/mtools missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  make_tree(dir.file("tree"));
  make_marked(dir.file("gone.bin"), 2);
  for (auto [bits, size] : {std::pair{12, "8M"}, {16, "64M"}, {32, "300M"}}) {
    DYNAMIC_SECTION("FAT" << bits) {
      std::string img = dir.file("fat.img"), out = dir.file("out.raw");
      std::string mt = "MTOOLS_SKIP_CHECK=1 ";
      REQUIRE(sh("rm -f " + img + " && truncate -s " + size + " " + img + " && mkfs.vfat -F " + std::to_string(bits) +
                 " " + img + " && " + mt + "mcopy -s -i " + img + " " + dir.file("tree") + " ::/ && " + mt +
                 "mcopy -i " + img + " " + dir.file("gone.bin") + " ::/gone.bin && " + mt + "mdel -i " + img +
                 " ::/gone.bin") == 0);
      REQUIRE(image_has_marker(img));
      auto r = disk::test::capture_raw(img, out);
      REQUIRE(r);
      VolumeMap m = only_volume(r->plan);
      INFO(m.note);
      CHECK(m.filesystem == "vfat");
      CHECK_FALSE(m.full_copy);
      CHECK(sh("fsck.vfat -n " + out) == 0);
      CHECK_FALSE(image_has_marker(out));
      CHECK(sh("MTOOLS_SKIP_CHECK=1 mtype -i " + out + " ::/tree/a.bin | cmp - " + dir.file("tree/a.bin")) == 0);
    }
  }
}

TEST_CASE("disk::map_ntfs from $Bitmap", "[disk][ntfs]") {
  if (!have("mkntfs") || !have("ntfscp") || !have("ntfsfix")) {
    WARN("ntfs-3g tools missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  std::string img = dir.file("ntfs.img"), out = dir.file("out.raw");
  REQUIRE(sh("truncate -s 64M " + img + " && mkntfs -Q -F -q " + img) == 0);
  REQUIRE(sh("head -c 2000000 /dev/urandom > " + dir.file("a.bin") + " && ntfscp -f " + img + " " +
             dir.file("a.bin") + " a.bin") == 0);
  auto r = disk::test::capture_raw(img, out);
  REQUIRE(r);
  VolumeMap m = only_volume(r->plan);
  INFO(m.note);
  CHECK(m.filesystem == "ntfs");
  CHECK_FALSE(m.full_copy);
  CHECK(m.used.total() < 16u << 20);
  CHECK(sh("ntfsfix -n " + out) == 0);
  CHECK(sh("ntfscat " + out + " a.bin | cmp - " + dir.file("a.bin")) == 0);
}

TEST_CASE("disk::map_swap keeps the header page with its UUID and label", "[disk][swap]") {
  if (!have("mkswap")) {
    return;
  }
  utsushi::test::TempDir dir;
  std::string img = dir.file("swap.img");
  REQUIRE(sh("truncate -s 16M " + img + " && mkswap -L myswap -U 11111111-2222-3333-4444-555555555555 " + img) == 0);
  auto p = disk::test::plan_file(img);
  REQUIRE(p);
  VolumeMap m = only_volume(*p);
  CHECK(m.filesystem == "swap");
  CHECK(m.label == "myswap");
  CHECK(m.uuid == "11111111-2222-3333-4444-555555555555");
  CHECK(m.used.total() == 4096);
}

TEST_CASE("disk::map_xfs from the free-space B+trees and the AGFL", "[disk][xfs]") {
  if (!have("mkfs.xfs") || !have("xfs_repair") || !utsushi::test::is_root()) {
    WARN("xfsprogs or root missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  std::string img = dir.file("xfs.img"), out = dir.file("out.raw"), mnt = dir.file("mnt");
  make_tree(dir.file("tree"));
  make_marked(dir.file("gone.bin"), 4);
  REQUIRE(sh("truncate -s 320M " + img + " && mkfs.xfs -q " + img + " && mkdir " + mnt) == 0);
  if (sh("mount -o loop " + img + " " + mnt) != 0) {
    WARN("cannot loop-mount XFS here; skipped");
    return;
  }
  int rc = sh("cp -r " + dir.file("tree") + " " + mnt + "/ && cp " + dir.file("gone.bin") + " " + mnt +
              "/ && sync && rm " + mnt + "/gone.bin && sync");
  REQUIRE(sh("umount " + mnt) == 0);
  REQUIRE(rc == 0);
  REQUIRE(image_has_marker(img));
  auto r = disk::test::capture_raw(img, out);
  REQUIRE(r);
  VolumeMap m = only_volume(r->plan);
  INFO(m.note);
  CHECK(m.filesystem == "xfs");
  CHECK_FALSE(m.full_copy);
  CHECK(sh("xfs_repair -n -f " + out) == 0);
  CHECK_FALSE(image_has_marker(out));
}

TEST_CASE("disk: a partitioned disk maps each partition and keeps the MBR gap", "[disk]") {
  if (!have("sfdisk") || !have("mkfs.ext4")) {
    return;
  }
  utsushi::test::TempDir dir;
  std::string d = dir.file("disk.raw"), part = dir.file("p1.img"), out = dir.file("out.raw");
  REQUIRE(sh("truncate -s 80M " + d + " && printf 'label: dos\\nstart=2048,size=40M,type=83\\nsize=8M,type=82\\n"
             "size=8M,type=da\\n' | sfdisk -q " + d) == 0);
  // Boot code in the gap, ext4 in p1, swap in p2, random bytes in p3.
  REQUIRE(sh("printf 'GRUB-IN-THE-GAP' | dd of=" + d + " bs=1 seek=40000 conv=notrunc") == 0);
  REQUIRE(sh("truncate -s 40M " + part + " && mkfs.ext4 -q " + part + " && dd if=" + part + " of=" + d +
             " bs=1M seek=1 conv=notrunc,sparse") == 0);
  REQUIRE(sh("mkswap " + d + " --offset $((41*1024*1024)) 8M || (truncate -s 8M " + dir.file("s") + " && mkswap " +
             dir.file("s") + " && dd if=" + dir.file("s") + " of=" + d + " bs=1M seek=41 conv=notrunc)") == 0);
  REQUIRE(sh("head -c 1000000 /dev/urandom | dd of=" + d + " bs=1M seek=49 conv=notrunc") == 0);
  auto r = disk::test::capture_raw(d, out);
  REQUIRE(r);
  REQUIRE(r->plan.volumes.size() == 3);
  CHECK(r->plan.volumes[0].filesystem == "ext4");
  CHECK(r->plan.volumes[1].filesystem == "swap");
  CHECK(r->plan.volumes[2].full_copy);
  CHECK(sh("grep -q -a GRUB-IN-THE-GAP " + out) == 0);
  CHECK(sh("cmp -n $((49*1024*1024+1000000)) " + d + " " + out + " -i $((49*1024*1024)):$((49*1024*1024))") == 0);
  CHECK(sh("e2fsck -fn " + out + "?offset=1048576 || (dd if=" + out + " of=" + part + " bs=1M skip=1 count=40 && e2fsck -fn " + part + ")") == 0);
}
