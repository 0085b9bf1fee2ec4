#include "utsushi/virt/domain_spec.h"

#include <catch2/catch.hpp>

#include "result_printer.h"

#include <fstream>

#include "test_support.h"
#include "utsushi/common/process.h"
#include "utsushi/virt/connection.h"

using namespace utsushi;
using namespace utsushi::virt;
using Catch::Matchers::Contains;

namespace {

const char* const k_hostile = "web & <db> 'one' \"two\"";

DomainSpec full_spec() {
  DomainSpec s;
  s.type = VirtType::qemu;
  s.name = "web-01";
  s.uuid = "0b3f0d7c-2a61-4c4f-9f4e-8d7b1a2c3d4e";
  s.title = "converted from srv1";
  s.description = "captured by p2v";
  s.memory_bytes = 3ull << 30;
  s.vcpus = 4;
  s.topology = CpuTopology{1, 2, 2};
  s.machine = Machine::q35;
  s.firmware = Firmware::uefi;
  s.uefi = debian_ovmf();
  s.uefi.nvram = "/var/lib/libvirt/qemu/nvram/web-01_VARS.fd";
  s.disks = {{"/var/lib/libvirt/images/web-01.qcow2", DiskSourceKind::file, "qcow2", DiskBus::virtio, "vda", 1, false, "none"},
             {"/dev/vg0/data", DiskSourceKind::block, "raw", DiskBus::scsi, "sda", std::nullopt, false, ""},
             {"/srv/iso/tools.img", DiskSourceKind::file, "raw", DiskBus::sata, "sdb", std::nullopt, true, ""}};
  s.nics = {{NicKind::network, "default", NicModel::virtio, "52:54:00:12:34:56", std::nullopt},
            {NicKind::bridge, "br0", NicModel::e1000e, "00:1b:21:aa:bb:cc", std::nullopt}};
  s.metadata = Metadata{"p2v", {{"source-host", "srv1"}, {"profile", "/srv/out/hw.json"}}};
  return s;
}

// virt-xml-validate (libvirt-clients, runs xmllint on libvirt's RelaxNG
// schema): the oracle for what encode_domain() writes.
void require_schema_valid(const std::string& xml) {
  test::TempDir dir;
  std::string path = dir.file("domain.xml");
  std::ofstream(path) << xml;
  auto r = run_process({"virt-xml-validate", path, "domain"});
  REQUIRE(r);
  INFO(r->output);
  INFO(xml);
  CHECK(r->ok());
}

}  // namespace

TEST_CASE("virt::encode_domain writes what decode_domain reads back", "[virt][domain_spec]") {
  DomainSpec s = full_spec();
  auto xml = encode_domain(s);
  REQUIRE(xml);
  auto back = decode_domain(*xml);
  REQUIRE(back);
  CHECK(*back == s);
  require_schema_valid(*xml);
}

TEST_CASE("virt::encode_domain: BIOS, no boot order, targets picked per bus", "[virt][domain_spec]") {
  DomainSpec s;
  s.name = "plain";
  s.memory_bytes = 1000;  // rounds up to 1 KiB
  s.disks = {{"/a.qcow2", DiskSourceKind::file, "qcow2", DiskBus::virtio, "", std::nullopt, false, ""},
             {"/b.raw", DiskSourceKind::file, "raw", DiskBus::sata, "", std::nullopt, false, ""},
             {"/c.raw", DiskSourceKind::file, "raw", DiskBus::virtio, "vda", std::nullopt, false, ""}};
  s.serial_console = false;
  s.rng = false;
  s.memballoon = false;
  auto xml = encode_domain(s);
  REQUIRE(xml);
  CHECK_THAT(*xml, Contains("<boot dev=\"hd\" />"));
  CHECK_THAT(*xml, Contains("<memballoon model=\"none\" />"));
  auto back = decode_domain(*xml);
  REQUIRE(back);
  REQUIRE(back->disks.size() == 3);
  CHECK(back->disks[0].target == "vdb");  // vda is taken by the third disk
  CHECK(back->disks[1].target == "sda");
  CHECK(back->disks[2].target == "vda");
  CHECK(back->memory_bytes == 1024);
  CHECK(back->firmware == Firmware::bios);
  CHECK_FALSE(back->serial_console);
  CHECK_FALSE(back->rng);
  CHECK_FALSE(back->memballoon);
  require_schema_valid(*xml);
}

TEST_CASE("virt::encode_domain escapes every name", "[virt][domain_spec]") {
  DomainSpec s = full_spec();
  s.name = k_hostile;
  s.title = k_hostile;
  s.disks[0].path = std::string("/srv/") + k_hostile + ".qcow2";
  s.nics[0].source = k_hostile;
  s.metadata->values[k_hostile] = k_hostile;
  auto xml = encode_domain(s);
  REQUIRE(xml);
  CHECK_THAT(*xml, Contains("web &amp; &lt;db&gt;"));
  CHECK_THAT(*xml, !Contains("<db>"));
  auto back = decode_domain(*xml);
  REQUIRE(back);
  CHECK(*back == s);
  require_schema_valid(*xml);
}

TEST_CASE("virt::encode_domain refuses invalid specs, naming the field", "[virt][domain_spec]") {
  auto refused = [](DomainSpec s, const char* what) {
    auto r = encode_domain(s);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::invalid_argument);
    CHECK_THAT(r.error().message(), Contains(what));
  };
  DomainSpec s = full_spec();
  refused([&] { auto t = s; t.name.clear(); return t; }(), "name");
  refused([&] { auto t = s; t.uuid = "not-a-uuid"; return t; }(), "not-a-uuid");
  refused([&] { auto t = s; t.memory_bytes = 0; return t; }(), "memory");
  refused([&] { auto t = s; t.vcpus = 0; return t; }(), "vCPUs");
  refused([&] { auto t = s; t.vcpus = 3; return t; }(), "topology");
  refused([&] { auto t = s; t.nics[0].mac = "52:54:00:zz:00:01"; return t; }(), "52:54:00:zz:00:01");
  refused([&] { auto t = s; t.disks[1].target = "vda"; return t; }(), "two disks on target vda");
  refused([&] { auto t = s; t.uefi.loader.clear(); return t; }(), "loader");
  refused([&] { auto t = s; t.metadata->tool.clear(); return t; }(), "tool");
}

TEST_CASE("virt::decode_domain refuses malformed definitions, naming what is wrong", "[virt][domain_spec]") {
  auto refused = [](const std::string& xml, const char* what) {
    auto r = decode_domain(xml);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::invalid_argument);
    CHECK_THAT(r.error().message(), Contains(what));
  };
  const std::string head = "<domain type='kvm'><name>x</name>";
  refused("<domain", "domain XML");
  refused("<network/>", "not <domain>");
  refused("<domain type='kvm'><memory>1</memory></domain>", "no <name>");
  refused("<domain type='xen'><name>x</name><memory>1</memory></domain>", "xen");
  refused(head + "</domain>", "no <memory>");
  refused(head + "<memory unit='parsecs'>1</memory></domain>", "parsecs");
  refused(head + "<memory>12abc</memory></domain>", "12abc");
  refused(head + "<memory unit='TiB'>99999999999</memory></domain>", "too large");
  refused(head + "<memory>1</memory><vcpu>0</vcpu></domain>", "<vcpu>");
  refused(head + "<memory>1</memory><os><type machine='virt'>hvm</type></os></domain>", "virt");
  refused(head + "<memory>1</memory><devices><disk type='file' device='disk'><source file='/a'/></disk></devices></domain>",
          "target");
  refused(head + "<memory>1</memory><devices><disk type='file' device='disk'><target dev='vda' bus='usb'/>"
                 "<source file='/a'/></disk></devices></domain>",
          "usb");
  refused(head + "<memory>1</memory><devices><interface type='network'><source network='n'/>"
                 "<model type='rtl8139'/></interface></devices></domain>",
          "rtl8139");
}

TEST_CASE("virt::decode_domain reads libvirt's own rendering of what encode_domain wrote", "[virt][domain_spec][libvirt]") {
  DomainSpec s = full_spec();
  s.name = k_hostile;
  s.firmware = Firmware::bios;  // the test driver has no OVMF to resolve
  auto xml = encode_domain(s);
  REQUIRE(xml);
  auto conn = Connection::open("test:///default");
  REQUIRE(conn);
  auto name = (*conn)->define(*xml);
  REQUIRE(name);
  CHECK(*name == k_hostile);
  auto live = (*conn)->xml(*name, k_xml_inactive);
  REQUIRE(live);
  auto back = decode_domain(*live);
  REQUIRE(back);
  INFO(*live);
  CHECK(encode_domain(*back).value() == *xml);
  REQUIRE((*conn)->undefine(*name));
}
