// The image-output entry: the format list, option checks, and the kinds of
// target write_image accepts or refuses before any work.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "memory_driver.h"
#include "test_support.h"
#include "utsushi/imagefmt/output.h"
#include "utsushi/imagefmt/registry.h"

using namespace utsushi;
using namespace utsushi::imagefmt;

TEST_CASE("output: the writable formats and their options", "[output]") {
  std::vector<std::string_view> names;
  for (const WritableFormat& f : writable_formats()) {
    names.push_back(f.name);
  }
  CHECK(names == std::vector<std::string_view>{"raw", "qcow2", "vmdk", "ova"});
  CHECK((*find_writable_format("qcow2"))->compress);
  CHECK((*find_writable_format("raw"))->block_device);
  CHECK_FALSE((*find_writable_format("ova"))->block_device);
  auto vdi = find_writable_format("vdi");
  REQUIRE_FALSE(vdi);
  CHECK(vdi.error().code() == Errc::not_supported);
  CHECK(vdi.error().message().find("raw, qcow2, vmdk, ova") != std::string::npos);
}

TEST_CASE("output: options that do not apply to the format are refused", "[output]") {
  OutputOptions o;
  o.format = "raw";
  o.cluster_size = 65536;
  CHECK(check_output_options(o).error().code() == Errc::invalid_argument);
  o.format = "qcow2";
  CHECK(check_output_options(o));
  o.cluster_size = 3000;
  CHECK(check_output_options(o).error().code() == Errc::invalid_argument);
  o = {};
  o.format = "vmdk";
  o.compress = true;
  CHECK(check_output_options(o).error().message().find("always compressed") != std::string::npos);
  o = {};
  o.format = "qcow2";
  o.cpus = 2;
  CHECK(check_output_options(o).error().message().find("cpus") != std::string::npos);
  o.format = "ova";
  CHECK(check_output_options(o));
  o.compression_type = "lz4";
  CHECK_FALSE(check_output_options(o));
}

TEST_CASE("output: write_image to a file, and targets that are refused untouched", "[output]") {
  test::TempDir dir;
  auto data = test::pattern(1 << 20, 4);
  auto driver = std::make_unique<test::MemoryDriver>(data.size(), Capabilities{});
  driver->data() = data;
  BlockDevice source(std::move(driver));
  OutputOptions o;
  o.format = "qcow2";
  auto s = write_image(source, dir.file("a.qcow2"), o);
  REQUIRE(s);
  CHECK_FALSE(s->block_device);
  auto back = open_image(dir.file("a.qcow2"));
  REQUIRE(back);
  std::vector<std::uint8_t> got(data.size());
  REQUIRE((*back)->pread(got, 0));
  CHECK(got == data);

  std::string fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  for (const std::string& t : {fifo, std::string("/dev/null"), dir.path()}) {
    auto r = write_image(source, t, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::invalid_argument);
  }
  CHECK(std::filesystem::is_fifo(fifo));
  CHECK(check_output_target(dir.file("new.raw"), OutputOptions{}).value() == TargetKind::new_file);
}
