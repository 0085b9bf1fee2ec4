// map_lvm on a physical volume made by the real LVM tools on a loop device:
// the label and metadata are kept, an LV with a filesystem is mapped by that
// filesystem's used blocks, an LV of unknown content is copied whole, and
// free extents are not copied. lvcreate runs with --driverloaded n (no
// device-mapper here: the LVs are never activated).
#include <catch2/catch.hpp>

#include <unistd.h>

#include "disk_test_util.h"

using namespace utsushi;
using namespace utsushi::disk;
using disk::test::have;
using disk::test::sh;

namespace {

using disk::test::MiB;

// LVM commands restricted to one device, quiet about inherited descriptors.
std::string lvm_cmd(const std::string& device, const std::string& args) {
  return "LVM_SUPPRESS_FD_WARNINGS=1 " + args + " --devices " + device;
}

}  // namespace

TEST_CASE("disk::map_lvm maps each linear LV and skips free extents", "[disk][lvm]") {
  if (!utsushi::test::is_root() || !have("pvcreate") || !have("lvcreate") || !have("mkfs.ext4") || !have("debugfs")) {
    WARN("root or the LVM/e2fsprogs tools missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  std::string img = dir.file("pv.img");
  REQUIRE(sh("truncate -s 64M " + img) == 0);
  std::string why;
  auto loop = utsushi::test::LoopDevice::attach(img, why);
  if (!loop) {
    WARN("no loop device: " + why);
    return;
  }
  const std::string dev = loop->path();
  const std::string vg = "utsushi_test_" + std::to_string(::getpid());
  std::string pv = dir.file("pv-copy.img");
  {
    REQUIRE(sh(lvm_cmd(dev, "pvcreate -q " + dev)) == 0);
    REQUIRE(sh(lvm_cmd(dev, "vgcreate -q -s 4M " + vg + " " + dev)) == 0);
    int made = sh(lvm_cmd(dev, "lvcreate --driverloaded n --activate n -Zn -q -L 24M -n data " + vg)) +
               sh(lvm_cmd(dev, "lvcreate --driverloaded n --activate n -Zn -q -L 8M -n blob " + vg));
    // Keep the PV as it is, then remove the VG so this host forgets it.
    int copied = sh("cp --sparse=always " + img + " " + pv);
    CHECK(sh(lvm_cmd(dev, "vgremove -ff -q " + vg)) == 0);
    REQUIRE(made == 0);
    REQUIRE(copied == 0);
  }
  // Layout (pvcreate's default first PE at 1 MiB, 4 MiB extents): data = PEs
  // 0-5 at 1..25 MiB, blob = PEs 6-7 at 25..33 MiB, free extents after.
  REQUIRE(sh("mkdir -p " + dir.file("tree") + " && head -c 3000000 /dev/urandom > " + dir.file("tree/a.bin") +
             " && mkfs.ext4 -q -E offset=" + std::to_string(MiB) + " -d " + dir.file("tree") + " " + pv + " 24M") == 0);
  REQUIRE(sh("head -c 8388608 /dev/urandom | dd of=" + pv + " bs=1M seek=25 conv=notrunc") == 0);
  REQUIRE(sh("printf 'FREE-EXTENT-MARKER' | dd of=" + pv + " bs=1M seek=40 conv=notrunc") == 0);

  auto r = disk::test::capture_raw(pv, dir.file("out.raw"));
  REQUIRE(r);
  REQUIRE(r->plan.volumes.size() == 1);
  const VolumeMap& m = r->plan.volumes[0];
  INFO(m.note);
  CHECK(m.filesystem == "LVM2_member");
  CHECK_FALSE(m.full_copy);
  REQUIRE(m.children.size() == 2);
  const VolumeMap& data = m.children[0];
  const VolumeMap& blob = m.children[1];
  CHECK(data.name == "disk/" + vg + "/data");
  CHECK(data.filesystem == "ext4");
  CHECK_FALSE(data.full_copy);
  CHECK(data.disk_offset == 1 * MiB);
  CHECK(data.used.total() < 12 * MiB);
  CHECK(blob.name == "disk/" + vg + "/blob");
  CHECK(blob.full_copy);
  CHECK(blob.used.contains(25 * MiB, 8 * MiB));
  CHECK(m.used.contains(0, 1 * MiB));  // label and metadata area
  CHECK(m.used.contains(25 * MiB, 8 * MiB));
  CHECK(m.used.clipped(64 * MiB).total() - m.used.clipped(33 * MiB).total() == 0);  // no free extent
  CHECK(sh("grep -q -a FREE-EXTENT-MARKER " + dir.file("out.raw")) != 0);
  CHECK(sh("dd if=" + dir.file("out.raw") + " of=" + dir.file("lv.img") + " bs=1M skip=1 count=24 && e2fsck -fn " +
           dir.file("lv.img")) == 0);
  CHECK(sh("cmp -n 8388608 -i $((25*1024*1024)):$((25*1024*1024)) " + pv + " " + dir.file("out.raw")) == 0);
}

TEST_CASE("disk::map_lvm falls back to a full copy on damaged metadata", "[disk][lvm]") {
  if (!have("pvcreate")) {
    WARN("LVM tools missing; skipped");
    return;
  }
  utsushi::test::TempDir dir;
  std::string img = dir.file("pv.img");
  // pvcreate on a plain file is refused; a PV label alone is enough here: copy
  // a label sector with a broken checksum.
  REQUIRE(sh("truncate -s 8M " + img) == 0);
  utsushi::test::write_at(img, 512, std::vector<std::uint8_t>{'L', 'A', 'B', 'E', 'L', 'O', 'N', 'E'});
  std::vector<std::uint8_t> type{'L', 'V', 'M', '2', ' ', '0', '0', '1'};
  utsushi::test::write_at(img, 512 + 24, type);
  auto p = disk::test::plan_file(img);
  REQUIRE(p);
  REQUIRE(p->volumes.size() == 1);
  CHECK(p->volumes[0].filesystem == "LVM2_member");
  CHECK(p->volumes[0].full_copy);
  CHECK(p->volumes[0].note.find("checksum") != std::string::npos);
}
