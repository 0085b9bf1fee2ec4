// OVA: digests, manifest lines, the OVF descriptor, and whole archives
// written, read and checked (manifest verified while reading).
#include "utsushi/imagefmt/ova.h"

#include <archive.h>
#include <archive_entry.h>

#include <catch2/catch.hpp>
#include <random>

#include "oracle.h"
#include "test_support.h"
#include "utsushi/common/atomic_file.h"
#include "utsushi/common/endian.h"
#include "utsushi/common/handles.h"
#include "utsushi/imagefmt/ova_format.h"
#include "utsushi/imagefmt/registry.h"

using namespace utsushi;
using namespace utsushi::imagefmt;
using test::read_all;
using test::sh;

namespace {

using Members = std::vector<std::pair<std::string, std::string>>;  // name, content

// The members of a tar, in order.
Members untar(const std::string& path) {
  Members out;
  ArchiveReader a(archive_read_new());
  REQUIRE(archive_read_support_format_tar(a.get()) == ARCHIVE_OK);
  REQUIRE(archive_read_open_filename(a.get(), path.c_str(), 1 << 16) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    std::string data(static_cast<std::size_t>(archive_entry_size(e)), '\0');
    REQUIRE(archive_read_data(a.get(), data.data(), data.size()) == static_cast<la_ssize_t>(data.size()));
    out.emplace_back(archive_entry_pathname(e), std::move(data));
  }
  return out;
}

void tar(const std::string& path, const Members& members) {
  ArchiveWriter a(archive_write_new());
  REQUIRE(archive_write_set_format_pax_restricted(a.get()) == ARCHIVE_OK);
  REQUIRE(archive_write_open_filename(a.get(), path.c_str()) == ARCHIVE_OK);
  for (const auto& [name, data] : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    REQUIRE(archive_write_header(a.get(), e) == ARCHIVE_OK);
    archive_entry_free(e);
    REQUIRE(archive_write_data(a.get(), data.data(), data.size()) == static_cast<la_ssize_t>(data.size()));
  }
  REQUIRE(archive_write_close(a.get()) == ARCHIVE_OK);
}

std::string sha256(const std::string& bytes) {
  auto h = ova::hex_digest_of(ova::DigestAlgorithm::sha256, bytes);
  REQUIRE(h);
  return *h;
}

std::string manifest(const Members& members) {
  std::string mf;
  for (const auto& [name, data] : members) {
    mf += ova::manifest_line(ova::DigestAlgorithm::sha256, name, sha256(data));
  }
  return mf;
}

enum class Content { pattern, random };

// An OVA of `size` bytes of data written by write_ova.
std::string make_ova(const test::TempDir& dir, const std::string& name, std::uint64_t size,
                     Content content = Content::pattern) {
  std::string raw = dir.file(name + ".raw"), out = dir.file(name + ".ova");
  test::make_sparse_file(raw, size);
  std::vector<std::uint8_t> data = test::pattern(static_cast<std::size_t>(size), 7);
  if (content == Content::random) {
    std::mt19937_64 gen(7);
    for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
      store_le64(data.data() + i, gen());
    }
  }
  test::write_at(raw, 0, data);
  auto src = open_image(raw, OpenOptions{"raw", Access::read_only});
  REQUIRE(src);
  auto file = AtomicFile::create(out);
  REQUIRE(file);
  OvaWriteOptions o;
  o.name = name;
  o.cpus = 3;
  o.memory_mib = 1536;
  REQUIRE(write_ova(**src, file->fd(), dir.path(), o));
  REQUIRE(file->commit());
  return out;
}

// Reads every data extent of `dev`; the first error, if any.
Result<void> read_everything(BlockDevice& dev) {
  std::vector<std::uint8_t> buf(1 << 20);
  for (const Extent& e : UTSUSHI_TRY(dev.extents())) {
    for (std::uint64_t pos = e.offset; e.type == ExtentType::data && pos < e.offset + e.length;) {
      auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), e.offset + e.length - pos));
      UTSUSHI_TRY(dev.pread(std::span(buf).first(n), pos));
      pos += n;
    }
  }
  return {};
}

}  // namespace

TEST_CASE("ova::Digest: FIPS 180 test vectors through libcrypto", "[ova]") {
  auto hex = [](ova::DigestAlgorithm a, std::string_view text) {
    auto r = ova::hex_digest_of(a, text);
    REQUIRE(r);
    return *r;
  };
  CHECK(hex(ova::DigestAlgorithm::sha1, "abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(hex(ova::DigestAlgorithm::sha256, "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex(ova::DigestAlgorithm::sha512, "abc").starts_with("ddaf35a193617abacc417349ae204131"));
  CHECK(hex(ova::DigestAlgorithm::sha256, "") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Streaming in pieces gives the digest of the whole.
  auto d = ova::Digest::create(ova::DigestAlgorithm::sha256);
  REQUIRE(d);
  d->update(std::string_view("a"));
  d->update(std::string_view("bc"));
  auto first = d->hex_digest();
  REQUIRE(first);
  CHECK(*first == hex(ova::DigestAlgorithm::sha256, "abc"));
  CHECK_FALSE(d->hex_digest());  // finished
}

TEST_CASE("ova::parse_manifest: OVF 1.x and 2.x lines, malformed lines named", "[ova]") {
  const std::string h1(40, 'a'), h256(64, 'B'), h512(128, '0');
  auto m =
      ova::parse_manifest("SHA1(a.ovf)= " + h1 + "\r\n\nSHA256 (b (1).vmdk) = " + h256 + "\nSHA512(c.iso)= " + h512);
  REQUIRE(m);
  REQUIRE(m->size() == 3);
  CHECK((*m)[0].algorithm == ova::DigestAlgorithm::sha1);
  CHECK((*m)[0].file == "a.ovf");
  CHECK((*m)[1].file == "b (1).vmdk");
  CHECK((*m)[1].hex == std::string(64, 'b'));  // lower case
  CHECK((*m)[1].line == 3);
  CHECK((*m)[2].algorithm == ova::DigestAlgorithm::sha512);

  for (std::string bad : {"SHA256(a.ovf)= " + h1,                 // SHA1 length under SHA256
                          "MD5(a.ovf)= " + std::string(32, 'a'),  // unknown algorithm
                          "SHA256(a.ovf) " + h256,                // no '='
                          "SHA256()= " + h256,                    // no name
                          "SHA256(a.ovf)= " + std::string(63, 'a') + "g"}) {
    auto r = ova::parse_manifest("SHA1(x)= " + h1 + "\n" + bad + "\n");
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::corruption);
    CHECK_THAT(r.error().message(), Catch::Contains("line 2"));
  }
  auto twice = ova::parse_manifest("SHA1(x)= " + h1 + "\nSHA256(x)= " + h256 + "\n");
  REQUIRE_FALSE(twice);
  CHECK_THAT(twice.error().message(), Catch::Contains("second time"));
  CHECK(ova::manifest_line(ova::DigestAlgorithm::sha256, "d.vmdk", h256) == "SHA256(d.vmdk)= " + h256 + "\n");
}

TEST_CASE("ova: write_ovf and read_ovf_disk agree, foreign descriptors are read by local name", "[ova]") {
  ova::OvfSettings s;
  s.name = "a&b<c\"d'e";
  s.disk_file = s.name + "-disk1.vmdk";
  s.disk_file_size = 12345;
  s.capacity = 1 << 30;
  std::string text = ova::write_ovf(s);
  CHECK(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
  auto disk = ova::read_ovf_disk(text);
  REQUIRE(disk);
  CHECK(disk->file == s.disk_file);
  CHECK(disk->size == 12345u);
  CHECK(disk->format.ends_with("#streamOptimized"));

  // Prefixed elements, a second File before the disk's, no ovf:size.
  auto foreign = ova::read_ovf_disk(
      "<ovf:Envelope xmlns:ovf='http://schemas.dmtf.org/ovf/envelope/2'><ovf:References>"
      "<ovf:File ovf:id='iso' ovf:href='tools.iso'/><ovf:File ovf:id='f2' ovf:href='disk.vmdk'/></ovf:References>"
      "<ovf:DiskSection><ovf:Disk ovf:diskId='d' ovf:fileRef='f2' ovf:capacity='1'/></ovf:DiskSection>"
      "</ovf:Envelope>");
  REQUIRE(foreign);
  CHECK(foreign->file == "disk.vmdk");
  CHECK_FALSE(foreign->size);

  auto refused = [](const std::string& xml, Errc want, const char* needle) {
    auto r = ova::read_ovf_disk(xml);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == want);
    CHECK_THAT(r.error().message(), Catch::Contains(needle));
  };
  refused("<Envelope><References>", Errc::corruption, "well-formed");
  refused("<Envelope/>", Errc::corruption, "no disk");
  refused("<Other/>", Errc::corruption, "Envelope");
  refused("<Envelope><References/><DiskSection><Disk fileRef='f'/></DiskSection></Envelope>", Errc::corruption,
          "not in References");
  refused(
      "<Envelope><References><File id='f' href='d.vmdk.gz' compression='gzip'/></References>"
      "<DiskSection><Disk fileRef='f'/></DiskSection></Envelope>",
      Errc::not_supported, "compressed");
  refused(
      "<Envelope><References><File id='f' href='d.vmdk' chunkSize='1000'/></References>"
      "<DiskSection><Disk fileRef='f'/></DiskSection></Envelope>",
      Errc::not_supported, "chunk");
}

TEST_CASE("ova: write_ova's archive reads back, its manifest matches, qemu-img reads its disk", "[ova][qemu-img]") {
  test::TempDir dir;
  std::string ova = make_ova(dir, "vm", 3u << 20);
  Members m = untar(ova);
  REQUIRE(m.size() == 3);
  CHECK(m[0].first == "vm.ovf");
  CHECK(m[1].first == "vm.mf");
  CHECK(m[2].first == "vm-disk1.vmdk");
  CHECK(m[1].second == manifest({m[0], m[2]}));
  CHECK_THAT(m[0].second, Catch::Contains("<rasd:VirtualQuantity>3</rasd:VirtualQuantity>"));
  CHECK_THAT(m[0].second, Catch::Contains("ovf:size=\"" + std::to_string(m[2].second.size()) + "\""));
  test::make_sparse_file(dir.file("disk.vmdk"), 0);
  test::write_at(dir.file("disk.vmdk"), 0, std::vector<std::uint8_t>(m[2].second.begin(), m[2].second.end()));
  CHECK(sh("qemu-img compare -q -f raw " + dir.file("vm.raw") + " -F vmdk " + dir.file("disk.vmdk")) == 0);

  auto dev = open_image(ova);
  REQUIRE(dev);
  CHECK((*dev)->format_name() == "ova");
  auto src = open_image(dir.file("vm.raw"), OpenOptions{"raw", Access::read_only});
  REQUIRE(src);
  CHECK(read_all(**dev) == read_all(**src));
  CHECK((*dev)->verify_integrity());
  auto rep = check_ova(ova);
  REQUIRE(rep);
  CHECK(rep->corruptions == 0);
  CHECK(rep->check_errors == 0);
}

TEST_CASE("ova: a disk that differs from the manifest fails the read that completes its digest", "[ova]") {
  test::TempDir dir;
  // A disk much larger than the digest window (incompressible data): opening
  // it reads only headers and tables, so its digest is not known yet.
  Members m = untar(make_ova(dir, "vm", k_ova_digest_window + (8u << 20), Content::random));
  // A byte of the VMDK's descriptor padding: no reader looks at it.
  m[2].second[512 * 20] = 'X';
  tar(dir.file("bad.ova"), m);
  auto dev = open_image(dir.file("bad.ova"));
  REQUIRE(dev);
  CHECK((*dev)->extents());  // what info reads: no verdict yet
  auto r = read_everything(**dev);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::corruption);
  CHECK_THAT(r.error().message(), Catch::Contains("'vm-disk1.vmdk' does not match") && Catch::Contains("line 2"));
  std::vector<std::uint8_t> buf(512);
  CHECK_FALSE((*dev)->pread(buf, 0));  // every later read fails too
  CHECK_FALSE((*dev)->verify_integrity());
  auto rep = check_ova(dir.file("bad.ova"));
  REQUIRE(rep);
  CHECK(rep->corruptions == 1);
  REQUIRE(rep->messages.size() == 1);
  CHECK_THAT(rep->messages[0], Catch::Contains("vm-disk1.vmdk"));
}

TEST_CASE("ova: a small disk that differs from the manifest is refused when the archive opens", "[ova]") {
  test::TempDir dir;
  Members m = untar(make_ova(dir, "vm", 2u << 20));
  m[2].second[512 * 20] = 'X';
  tar(dir.file("bad.ova"), m);
  // Smaller than the digest window: opening it hashes all of it.
  auto dev = open_image(dir.file("bad.ova"));
  REQUIRE_FALSE(dev);
  CHECK(dev.error().code() == Errc::corruption);
  CHECK_THAT(dev.error().message(), Catch::Contains("'vm-disk1.vmdk' does not match"));
}

TEST_CASE("ova: bytes no reader reaches are still verified by verify_integrity", "[ova]") {
  test::TempDir dir;
  Members m = untar(make_ova(dir, "vm", 1u << 20));
  // 24 MiB of trailing bytes after the VMDK's end-of-stream marker: a reader
  // never gets within the digest window of the member's end on its own.
  m[2].second.append(24u << 20, 'j');
  std::string good_hex = sha256(m[2].second);
  m[1].second = manifest({m[0], m[2]});
  tar(dir.file("tail.ova"), m);
  m[2].second.back() = 'k';  // now the manifest no longer matches
  tar(dir.file("tail-bad.ova"), m);

  auto good = open_image(dir.file("tail.ova"));
  REQUIRE(good);
  REQUIRE(read_everything(**good));
  CHECK((*good)->verify_integrity());
  auto bad = open_image(dir.file("tail-bad.ova"));
  REQUIRE(bad);
  REQUIRE(read_everything(**bad));  // the disk's own bytes are intact
  auto v = (*bad)->verify_integrity();
  REQUIRE_FALSE(v);
  CHECK_THAT(v.error().message(), Catch::Contains(good_hex));
}

TEST_CASE("ova: the descriptor and the manifest are checked when the archive opens", "[ova]") {
  test::TempDir dir;
  Members m = untar(make_ova(dir, "vm", 1u << 20));
  auto refused = [&](const std::string& name, const Members& members, const char* needle) {
    tar(dir.file(name), members);
    auto r = open_image(dir.file(name));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::corruption);
    CHECK_THAT(r.error().message(), Catch::Contains(needle));
  };
  Members bad_ovf = m;
  bad_ovf[0].second += "\n";
  refused("ovf.ova", bad_ovf, "'vm.ovf' does not match");
  Members malformed = m;
  malformed[1].second += "garbage\n";
  refused("malformed.ova", malformed, "line 3");
  Members missing = m;
  missing[1].second += ova::manifest_line(ova::DigestAlgorithm::sha1, "gone.iso", std::string(40, '0'));
  refused("missing.ova", missing, "gone.iso");
  Members unlisted = m;
  unlisted[1].second = manifest({m[0]});
  refused("unlisted.ova", unlisted, "does not list 'vm-disk1.vmdk'");
  Members twice = m;
  twice.push_back(m[2]);
  refused("twice.ova", twice, "appears twice");
  Members two_mf = m;
  two_mf.push_back({"other.mf", m[1].second});
  refused("two-mf.ova", two_mf, "two manifests");
  // No manifest: nothing to verify, the disk reads.
  tar(dir.file("none.ova"), {m[0], m[2]});
  auto none = open_image(dir.file("none.ova"));
  REQUIRE(none);
  CHECK(read_everything(**none));
  CHECK((*none)->verify_integrity());
}
