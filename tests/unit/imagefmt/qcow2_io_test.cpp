// qcow2 reader/writer/overlay round trips with qemu-img as the oracle.
#include <fcntl.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "memory_driver.h"
#include "oracle.h"
#include "test_support.h"
#include "utsushi/common/atomic_file.h"
#include "utsushi/common/endian.h"
#include "utsushi/common/process.h"
#include "utsushi/imagefmt/image_ops.h"
#include "utsushi/imagefmt/qcow2.h"
#include "utsushi/imagefmt/registry.h"

using namespace utsushi;
using namespace utsushi::imagefmt;

using test::read_all;
using test::sh;

TEST_CASE("qcow2 writer: parallel compressed output reads back and passes qemu-img check", "[qcow2]") {
  test::TempDir dir;
  std::string raw = dir.file("src.raw"), out = dir.file("out.qcow2");
  test::make_sparse_file(raw, 8 << 20);
  test::write_at(raw, 0, test::pattern(3 << 20, 1));
  test::write_at(raw, 7 << 20, std::vector<std::uint8_t>(4096, 'a'));
  for (auto type : {qcow2::CompressionType::zstd, qcow2::CompressionType::zlib}) {
    auto src = open_image(raw, OpenOptions{"raw", Access::read_only});
    REQUIRE(src);
    auto file = AtomicFile::create(out);
    REQUIRE(file);
    Qcow2WriteOptions o;
    o.compress = true;
    o.compression_type = type;
    o.threads = 3;
    auto stats = write_qcow2(**src, file->fd(), out, o);
    REQUIRE(stats);
    CHECK(stats->clusters_compressed >= 1);
    REQUIRE(file->commit());
    CHECK(sh("qemu-img check " + out) == 0);
    CHECK(sh("qemu-img compare " + raw + " " + out) == 0);
    auto back = open_image(out);
    REQUIRE(back);
    CHECK((*back)->format_name() == "qcow2");
    CHECK(read_all(**back) == read_all(**src));
    auto rep = check_qcow2(out);
    REQUIRE(rep);
    CHECK(rep->corruptions == 0);
    CHECK(rep->leaks == 0);
  }
}

TEST_CASE("qcow2 overlay: empty, clean, reads its backing, chains through qemu", "[qcow2]") {
  test::TempDir dir;
  std::string base = dir.file("base.raw");
  test::make_sparse_file(base, 4 << 20);
  test::write_at(base, 1 << 20, test::pattern(70000, 9));
  REQUIRE(create_qcow2_overlay(dir.file("o1.qcow2"), "base.raw", "raw"));
  CHECK(sh("qemu-img check " + dir.file("o1.qcow2")) == 0);
  CHECK(sh("qemu-img compare " + base + " " + dir.file("o1.qcow2")) == 0);
  // qemu writes into our overlay; we read the result like qemu does.
  REQUIRE(sh("qemu-io -f qcow2 -c 'write -P 0x42 1M 4k' " + dir.file("o1.qcow2")) == 0);
  CHECK(sh("qemu-img check " + dir.file("o1.qcow2")) == 0);
  REQUIRE(create_qcow2_overlay(dir.file("o2.qcow2"), "o1.qcow2", "qcow2"));
  CHECK(sh("qemu-img check " + dir.file("o2.qcow2")) == 0);
  REQUIRE(sh("qemu-img convert -O raw " + dir.file("o2.qcow2") + " " + dir.file("q.raw")) == 0);
  auto ours = open_image(dir.file("o2.qcow2"));
  REQUIRE(ours);
  auto theirs = open_image(dir.file("q.raw"));
  REQUIRE(theirs);
  CHECK(read_all(**ours) == read_all(**theirs));
  auto info = image_info(dir.file("o2.qcow2"), std::nullopt);
  REQUIRE(info);
  REQUIRE(info->backing_chain.size() == 2);
  CHECK(info->backing_chain[1].format == "raw");
}

TEST_CASE("qcow2 empty image: what qemu-img create makes, clean, all zeros, writable by qemu", "[qcow2]") {
  test::TempDir dir;
  std::string img = dir.file("e.qcow2");
  REQUIRE(create_qcow2(img, 3ull << 30));
  CHECK(sh("qemu-img check " + img) == 0);
  auto info = image_info(img, std::nullopt);
  REQUIRE(info);
  CHECK(info->format == "qcow2");
  CHECK(info->virtual_size == 3ull << 30);
  CHECK(info->backing_chain.empty());
  CHECK(sh("qemu-img info --output=json " + img + " | grep -q '\"virtual-size\": 3221225472'") == 0);
  CHECK(sh("qemu-img info --output=json " + img + " | grep -q backing") != 0);
  REQUIRE(sh("qemu-img create -q -f qcow2 " + dir.file("q.qcow2") + " 3G") == 0);
  CHECK(sh("qemu-img compare " + img + " " + dir.file("q.qcow2")) == 0);
  REQUIRE(sh("qemu-io -f qcow2 -c 'write -P 0x42 2G 64k' " + img) == 0);
  CHECK(sh("qemu-img check " + img) == 0);
  auto back = open_image(img);
  REQUIRE(back);
  std::vector<std::uint8_t> buf(65536);
  REQUIRE((*back)->pread(buf, 2ull << 30));
  CHECK(buf == std::vector<std::uint8_t>(65536, 0x42));
  CHECK_FALSE(create_qcow2(dir.file("zero.qcow2"), 0));
}

TEST_CASE("qcow2 reader: backing loops and write access are refused", "[qcow2]") {
  test::TempDir dir;
  std::string a = dir.file("a.qcow2"), b = dir.file("b.qcow2");
  REQUIRE(sh("qemu-img create -f qcow2 " + a + " 1M") == 0);
  REQUIRE(sh("qemu-img create -f qcow2 -b a.qcow2 -F qcow2 " + b) == 0);
  // Point a at b: a loop a -> b -> a.
  REQUIRE(sh("qemu-img rebase -u -f qcow2 -b b.qcow2 -F qcow2 " + a) == 0);
  auto r = open_image(b);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::corruption);
  CHECK(r.error().message().find("loop") != std::string::npos);
  auto w = open_image(dir.file("x"), OpenOptions{"qcow2", Access::read_write});
  CHECK_FALSE(w);
}

TEST_CASE("qcow2 reader: encrypted images are refused clearly", "[qcow2]") {
  test::TempDir dir;
  auto refused = [](const std::string& path) {
    auto r = open_image(path);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::not_supported);
    CHECK(r.error().message().find("encrypt") != std::string::npos);
  };
  // Legacy AES (crypt_method 1): qemu-img creates it without benchmarking anything.
  std::string aes = dir.file("aes.qcow2");
  REQUIRE(sh("qemu-img create -f qcow2 --object secret,id=s0,data=pw -o encrypt.format=aes,encrypt.key-secret=s0 " +
             aes + " 1M") == 0);
  refused(aes);
  // LUKS (crypt_method 2): qemu-img times PBKDF iterations against CPU time and
  // fails with "Unable to get accurate CPU usage" on a loaded machine; retry.
  std::string luks = dir.file("luks.qcow2");
  bool made = false;
  for (int attempt = 0; attempt < 5 && !made; ++attempt) {
    made = sh("qemu-img create -f qcow2 --object secret,id=s0,data=pw -o encrypt.format=luks,encrypt.key-secret=s0 " +
              luks + " 1M") == 0;
  }
  if (made) {
    refused(luks);
  } else {
    WARN("LUKS part skipped: qemu-img could not create a LUKS image on this loaded machine");
  }
}

TEST_CASE("qcow2 check: an unreadable L2 table is a check error (neither clean nor corrupt)", "[qcow2]") {
  test::TempDir dir;
  std::string img = dir.file("img.qcow2");
  REQUIRE(sh("qemu-img create -q -f qcow2 " + img + " 4M && qemu-io -c 'write -P 7 1M 64k' " + img) == 0);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(std::filesystem::file_size(img)));
  {
    auto in = open_image(img, OpenOptions{"raw", Access::read_only});
    REQUIRE(in);
    REQUIRE((*in)->pread(bytes, 0));
  }
  // The first L1 entry names the L2 table (qcow2 header: l1_table_offset at byte 40).
  std::uint64_t l1 = load_be64(bytes.data() + 40);
  std::uint64_t l2 = load_be64(bytes.data() + l1) & 0x00fffffffffffe00ull;
  REQUIRE(l2 != 0);
  auto run = [&](bool fail_l2) {
    auto mem = std::make_unique<test::MemoryDriver>(bytes.size(), Capabilities{});
    mem->data() = bytes;
    auto* raw = mem.get();
    BlockDevice dev(std::move(mem));
    if (fail_l2) {
      // The first pass records the calls; the second fails the one that reads the L2 table.
      auto probe = check_qcow2(dev, img);
      REQUIRE(probe);
      std::size_t n = 0;
      for (std::size_t i = 0; i < raw->calls().size(); ++i) {
        if (raw->calls()[i].offset == l2) {
          n = i + 1;
          break;
        }
      }
      REQUIRE(n != 0);
      raw->calls().clear();
      raw->fail_call(n);
    }
    return check_qcow2(dev, img);
  };
  auto clean = run(false);
  REQUIRE(clean);
  CHECK(clean->check_errors == 0);
  CHECK(clean->corruptions == 0);
  auto broken = run(true);
  REQUIRE(broken);
  CHECK(broken->check_errors == 1);
  CHECK(broken->corruptions == 0);
  bool named = false;
  for (const auto& m : broken->messages) {
    named = named || m.find("L2 table at offset " + std::to_string(l2)) != std::string::npos;
  }
  CHECK(named);
}
