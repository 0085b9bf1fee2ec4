// disk_images.h: where a libvirt domain's received disks go, and the images
// made for them (raw, qcow2 overlay through imagefmt): same virtual size,
// names never replaced, everything removed unless kept.
#include "utsushi/livemig/disk_images.h"
#include "utsushi/imagefmt/image_ops.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "test_support.h"
#include "utsushi/imagefmt/registry.h"

using namespace utsushi;
using namespace utsushi::livemig;
using Catch::Matchers::Contains;

namespace {

bool exists(const std::string& p) { return std::filesystem::exists(p); }

}  // namespace

TEST_CASE("livemig plan_images: the source's file name in the storage directory", "[livemig][disk_images]") {
  std::vector<SessionDisk> disks = {{"n0", "q0", 512, "/vm/a/root.qcow2", "qcow2", "", "", ""},
                                    {"n1", "q1", 512, "/vm/data.raw", "raw", "", "", ""}};
  auto plan = plan_images(disks, "/srv/in");
  REQUIRE(plan);
  CHECK(*plan == std::vector<ImagePlan>{{0, "/vm/a/root.qcow2", "/srv/in/root.qcow2"},
                                        {1, "/vm/data.raw", "/srv/in/data.raw"}});
  CHECK(plan_images({}, "/srv/in").value().empty());
  auto relative = plan_images(disks, "in");
  REQUIRE_FALSE(relative);
  CHECK(relative.error().code() == Errc::invalid_argument);
  disks[1].file = std::string("/other/root.qcow2");
  auto clash = plan_images(disks, "/srv/in");
  REQUIRE_FALSE(clash);
  CHECK_THAT(clash.error().message(), Contains("root.qcow2") && Contains("disks 0 and 1"));
  disks[1].file = std::string("/");
  CHECK_FALSE(plan_images(disks, "/srv/in"));
}

TEST_CASE("livemig check_free_space: the images' allocated sizes against the directory's free space",
          "[livemig][disk_images]") {
  std::vector<SessionDisk> disks = {{"n0", "q0", 1 << 30, "/vm/root.qcow2", "qcow2", "", "", "", 300 << 20},
                                    {"n1", "q1", 1 << 20, "/vm/data.raw", "raw", "", "", "", 1 << 20}};
  const std::uint64_t needed = (300 << 20) + (1 << 20);
  CHECK(check_free_space(disks, "/srv/in", needed));
  CHECK(check_free_space(disks, "/srv/in", 1ull << 40));
  CHECK(check_free_space({}, "/srv/in", 0));
  auto short_by_one = check_free_space(disks, "/srv/in", needed - 1);
  REQUIRE_FALSE(short_by_one);
  CHECK(short_by_one.error().code() == Errc::failed_precondition);
  CHECK_THAT(short_by_one.error().message(), Contains("/srv/in has 301.0 MiB (315621375 bytes) free") &&
                                                 Contains("2 disk images take 301.0 MiB (315621376 bytes)"));
  // 256 disks of 2^60 bytes each add up past 64 bits: the sum saturates, it does not wrap.
  std::vector<SessionDisk> huge(256, disks[0]);
  for (auto& d : huge) {
    d.allocated = k_max_session_disk_size;
  }
  CHECK_FALSE(check_free_space(huge, "/srv/in", ~std::uint64_t{0} - 1));
  // QEMU that gives no allocated size (0) asks for nothing.
  disks[0].allocated = disks[1].allocated = 0;
  CHECK(check_free_space(disks, "/srv/in", 0));
}

TEST_CASE("livemig CreatedImages: a standalone qcow2 of the source's size, no backing",
          "[livemig][disk_images]") {
  test::TempDir dir;
  std::vector<SessionDisk> disks = {{"n0", "q0", 3ull << 30, "/src/solo.qcow2", "qcow2", "", "", ""}};
  auto plan = plan_images(disks, dir.path()).value();
  auto made = CreatedImages::create(disks, plan);
  INFO((made ? "" : made.error().message()));
  REQUIRE(made);
  made->keep();
  auto info = imagefmt::image_info(dir.file("solo.qcow2"), std::string("qcow2"));
  REQUIRE(info);
  CHECK(info->virtual_size == 3ull << 30);
  CHECK(info->backing_chain.empty());
  CHECK(info->actual_size < (1u << 20));
}

TEST_CASE("livemig CreatedImages: raw and overlay images of the source's size, removed unless kept",
          "[livemig][disk_images]") {
  test::TempDir dir;
  std::string base = dir.file("base.raw");
  test::make_sparse_file(base, 8 << 20);
  std::vector<SessionDisk> disks = {
      {"n0", "q0", 16 << 20, "/src/top.qcow2", "qcow2", base, "raw", std::string(32, 'a')},
      {"n1", "q1", 4 << 20, "/src/data.raw", "raw", "", "", ""}};
  auto plan = plan_images(disks, dir.path()).value();

  SECTION("made, then removed on destruction") {
    {
      auto made = CreatedImages::create(disks, plan);
      INFO((made ? "" : made.error().message()));
      REQUIRE(made);
      CHECK(made->paths() == std::vector<std::string>{dir.file("top.qcow2"), dir.file("data.raw")});
      auto top = imagefmt::open_image(dir.file("top.qcow2"), imagefmt::OpenOptions{"qcow2", imagefmt::Access::read_only});
      REQUIRE(top);
      CHECK((*top)->size() == (16u << 20));
      struct stat st {};
      REQUIRE(::stat(dir.file("data.raw").c_str(), &st) == 0);
      CHECK(st.st_size == (4 << 20));
    }
    CHECK_FALSE(exists(dir.file("top.qcow2")));
    CHECK_FALSE(exists(dir.file("data.raw")));
    CHECK(exists(base));
  }
  SECTION("kept") {
    {
      auto made = CreatedImages::create(disks, plan);
      REQUIRE(made);
      made->keep();
    }
    CHECK(exists(dir.file("top.qcow2")));
    CHECK(exists(dir.file("data.raw")));
  }
  SECTION("a name that exists is refused, the other's file removed, the existing one untouched") {
    std::ofstream(dir.file("data.raw")) << "left by a killed receiver";
    auto made = CreatedImages::create(disks, plan);
    REQUIRE_FALSE(made);
    CHECK(made.error().code() == Errc::failed_precondition);
    CHECK_THAT(made.error().message(), Contains(dir.file("data.raw")) && Contains("already exists"));
    CHECK_FALSE(exists(dir.file("top.qcow2")));
    CHECK(std::filesystem::file_size(dir.file("data.raw")) == 25);
  }
  SECTION("a backing file that cannot be opened: nothing left") {
    disks[0].backing = dir.file("missing.raw");
    auto made = CreatedImages::create(disks, plan);
    REQUIRE_FALSE(made);
    CHECK_THAT(made.error().message(), Contains("top.qcow2"));
    CHECK_FALSE(exists(dir.file("top.qcow2")));
    CHECK_FALSE(exists(dir.file("data.raw")));
  }
}
