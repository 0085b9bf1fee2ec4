// qcow2 check against qemu-img check: clean images, truncated images, damaged
// entries and leaks give the same exit class and the same counts.
#include <catch2/catch.hpp>
#include <filesystem>

#include "oracle.h"
#include "test_support.h"
#include "utsushi/common/atomic_file.h"
#include "utsushi/common/endian.h"
#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/registry.h"

using namespace utsushi;
using namespace utsushi::imagefmt;
using test::sh;

namespace {

// An image written by write_qcow2 from 6 MiB of pattern data with a hole.
std::string make_image(const test::TempDir& dir, bool compress) {
  std::string raw = dir.file("src.raw"), out = dir.file(compress ? "c.qcow2" : "p.qcow2");
  test::make_sparse_file(raw, 6u << 20);
  test::write_at(raw, 0, test::pattern(2u << 20, 3));
  test::write_at(raw, 4u << 20, test::pattern(1u << 20, 4));
  auto src = open_image(raw, OpenOptions{"raw", Access::read_only});
  REQUIRE(src);
  auto file = AtomicFile::create(out);
  REQUIRE(file);
  Qcow2WriteOptions o;
  o.compress = compress;
  REQUIRE(write_qcow2(**src, file->fd(), out, o));
  REQUIRE(file->commit());
  return out;
}

// qemu-img check's exit codes from our report.
int exit_class(const CheckReport& r) { return r.check_errors ? 1 : r.corruptions ? 2 : r.leaks ? 3 : 0; }

// check_qcow2 and qemu-img check agree on `image`.
void agrees_with_qemu(const std::string& image) {
  INFO(image);
  auto ours = check_qcow2(image);
  REQUIRE(ours);
  auto q = test::qemu_img_check(image);
  CHECK(exit_class(*ours) == q.exit_code);
  CHECK(ours->corruptions == q.report.value("corruptions", 0u));
  CHECK(ours->leaks == q.report.value("leaks", 0u));
  CHECK(ours->check_errors == q.report.value("check-errors", 0u));
  CHECK(ours->image_end_offset == q.report.value("image-end-offset", 0u));
}

void truncate_copy(const std::string& from, const std::string& to, std::uint64_t size) {
  REQUIRE(sh("head -c " + std::to_string(size) + " " + from + " > " + to) == 0);
}

std::uint64_t header_u64(const std::string& image, std::size_t offset) {
  return load_be64(test::read_at(image, offset, 8).data());
}

}  // namespace

TEST_CASE("qcow2 check: images the writer makes are clean, as qemu-img says", "[qcow2][check][qemu-img]") {
  test::TempDir dir;
  for (bool compress : {false, true}) {
    std::string image = make_image(dir, compress);
    auto r = check_qcow2(image);
    REQUIRE(r);
    CHECK(r->corruptions == 0);
    CHECK(r->leaks == 0);
    CHECK(r->allocated_clusters > 0);
    CHECK(r->compressed_clusters == (compress ? r->allocated_clusters : 0));
    agrees_with_qemu(image);
  }
}

TEST_CASE("qcow2 check: a truncated image reports what lies past its end", "[qcow2][check][qemu-img]") {
  test::TempDir dir;
  std::string image = dir.file("q.qcow2");
  // qemu-img's layout: tables first, data after; a cut leaves references past the end.
  REQUIRE(sh("qemu-img convert -O qcow2 " + make_image(dir, false) + " " + image) == 0);
  std::string cut = dir.file("cut.qcow2");
  truncate_copy(image, cut, 1u << 20);
  auto r = check_qcow2(cut);
  REQUIRE(r);
  CHECK(r->corruptions > 0);
  REQUIRE_FALSE(r->messages.empty());
  CHECK_THAT(r->messages[0], Catch::Contains("exceeding the end of the file"));
  agrees_with_qemu(cut);
  // Ours: L1 and refcounts at the end, so a cut loses them (they read as zeros).
  std::string ours = make_image(dir, true);
  const std::uint64_t size = std::filesystem::file_size(ours);
  for (std::uint64_t n : {std::uint64_t{65536}, size / 2, size - 4096, size - 1}) {
    truncate_copy(ours, cut, n);
    agrees_with_qemu(cut);
  }
}

TEST_CASE("qcow2 check: damaged entries are reported, then counted as qemu-img counts them",
          "[qcow2][check][qemu-img]") {
  test::TempDir dir;
  std::string image = make_image(dir, false);
  const std::uint64_t l1 = header_u64(image, 40), reftable = header_u64(image, 48);
  const std::uint64_t l2 = header_u64(image, static_cast<std::size_t>(l1)) & qcow2::k_l1e_offset_mask;
  auto poked = [&](const std::string& name, std::uint64_t offset, std::uint64_t value) {
    std::string copy = dir.file(name);
    REQUIRE(sh("cp " + image + " " + copy) == 0);
    std::vector<std::uint8_t> word(8);
    store_be64(word.data(), value);
    test::write_at(copy, offset, word);
    return copy;
  };
  const std::uint64_t first_l2 = header_u64(image, static_cast<std::size_t>(l2));
  agrees_with_qemu(poked("l1-reserved.qcow2", l1, (std::uint64_t{1} << 57) | (l2 | qcow2::k_oflag_copied)));
  agrees_with_qemu(poked("l2-misaligned.qcow2", l1, (l2 + 512) | qcow2::k_oflag_copied));
  agrees_with_qemu(poked("data-misaligned.qcow2", l2, first_l2 + 512));
  agrees_with_qemu(poked("l2-reserved.qcow2", l2, first_l2 | (std::uint64_t{1} << 57)));
  agrees_with_qemu(
      poked("refblock-misaligned.qcow2", reftable, header_u64(image, static_cast<std::size_t>(reftable)) + 512));
  agrees_with_qemu(
      poked("reftable-reserved.qcow2", reftable, header_u64(image, static_cast<std::size_t>(reftable)) | 1));
  auto misaligned = check_qcow2(dir.file("refblock-misaligned.qcow2"));
  REQUIRE(misaligned);
  CHECK(misaligned->check_errors > 0);  // its refcounts cannot be read: the check is incomplete
}

TEST_CASE("qcow2 check: a cluster counted but referenced by nothing is a leak", "[qcow2][check][qemu-img]") {
  test::TempDir dir;
  std::string image = make_image(dir, false);
  const std::uint64_t reftable = header_u64(image, 48);
  const std::uint64_t block = header_u64(image, static_cast<std::size_t>(reftable)) & qcow2::k_reft_offset_mask;
  const std::uint64_t size = std::filesystem::file_size(image);
  const std::uint64_t clusters = (size + 65535) / 65536;
  // One more cluster at the end, counted by the refcount block (16-bit entries).
  REQUIRE(sh("truncate -s " + std::to_string((clusters + 1) * 65536) + " " + image) == 0);
  test::write_at(image, block + 2 * clusters, {0, 1});
  auto r = check_qcow2(image);
  REQUIRE(r);
  CHECK(r->leaks == 1);
  CHECK(r->corruptions == 0);
  agrees_with_qemu(image);
}
