#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "test_support.h"
#include "utsushi/common/process.h"
#include "utsushi/imagefmt/probe.h"
#include "utsushi/imagefmt/registry.h"

using namespace utsushi;
using namespace utsushi::imagefmt;

namespace {

std::vector<std::uint8_t> head_with(std::size_t offset, std::string_view magic) {
  std::vector<std::uint8_t> h(4096, 0);
  std::memcpy(h.data() + offset, magic.data(), magic.size());
  return h;
}

}  // namespace

TEST_CASE("probe: magic numbers beat raw", "[probe]") {
  CHECK(probe_format(head_with(0, std::string_view("QFI\xfb\0\0\0\3", 8)), 1 << 20).format == "qcow2");
  CHECK(probe_format(head_with(0, "KDMV"), 1 << 20).format == "vmdk");
  CHECK(probe_format(head_with(0, "# Disk DescriptorFile\n"), 1 << 20).format == "vmdk");
  CHECK(probe_format(head_with(0, "vhdxfile"), 1 << 20).format == "vhdx");
  CHECK(probe_format(head_with(0x40, "\x7f\x10\xda\xbe"), 1 << 20).format == "vdi");
  auto raw = probe_format(head_with(0, "\xeb\x63\x90"), 1 << 20);  // an MBR boot jump
  CHECK(raw.format == "raw");
  CHECK(raw.score == 1);
  CHECK(probe_format({}, 0).format == "raw");  // empty file
}

TEST_CASE("probe: a tar is an OVA only when the .ovf comes first", "[probe]") {
  auto ova = head_with(0, "vm.ovf");
  std::memcpy(ova.data() + 257, "ustar", 5);
  CHECK(probe_format(ova, 1 << 20).format == "ova");
  auto tar = head_with(0, "disk.vmdk");
  std::memcpy(tar.data() + 257, "ustar", 5);
  CHECK(probe_format(tar, 1 << 20).format == "raw");
}

TEST_CASE("probe: qemu-img's qcow2 is recognised from a real file", "[probe][qemu-img]") {
  test::TempDir dir;
  std::string path = dir.file("a.qcow2");
  auto r = run_process({"qemu-img", "create", "-f", "qcow2", path, "64M"});
  REQUIRE(r);
  REQUIRE(r->ok());
  auto p = probe_path(path);
  REQUIRE(p);
  CHECK(p->format == "qcow2");
}

TEST_CASE("registry: unknown and unreadable formats give clear errors", "[registry]") {
  test::TempDir dir;
  std::string path = dir.file("a.raw");
  test::make_sparse_file(path, 1 << 20);
  auto unknown = open_image(path, OpenOptions{"qed", Access::read_only});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code() == Errc::invalid_argument);
  CHECK(unknown.error().message().find("qed") != std::string::npos);
  test::write_at(path, 0, {'v', 'h', 'd', 'x', 'f', 'i', 'l', 'e'});
  auto vhdx = open_image(path);
  REQUIRE_FALSE(vhdx);
  CHECK(vhdx.error().code() == Errc::not_supported);
  CHECK(open_image(path, OpenOptions{"raw", Access::read_only}));
}
