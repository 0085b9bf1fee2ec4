#include <catch2/catch.hpp>

#include "result_printer.h"

#include "utsushi/virt/connection.h"
#include "utsushi/virt/domain_spec.h"
#include "utsushi/virt/domain_xml.h"

using namespace utsushi;
using namespace utsushi::virt;
using Catch::Matchers::Contains;

namespace {

// A running UEFI golden as `virsh dumpxml` shows it, with what a clone must
// not share.
const char* const k_golden = R"(<domain type='kvm' id='7'>
  <name>golden</name>
  <uuid>4f2c9a0e-1111-4a4a-9b9b-0123456789ab</uuid>
  <genid>a1b2c3d4-0000-4000-8000-000000000001</genid>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <sysinfo type='smbios'><system><entry name='manufacturer'>ACME</entry>
    <entry name='uuid'>4f2c9a0e-1111-4a4a-9b9b-0123456789ab</entry></system></sysinfo>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/golden_VARS.fd</nvram>
  </os>
  <cpu mode='host-model'><topology sockets='1' dies='1' cores='2' threads='1'/></cpu>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/golden.qcow2'/>
      <backingStore type='file'><format type='raw'/><source file='/srv/base.raw'/><backingStore/></backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/><source file='/srv/tools.iso'/><target dev='sda' bus='sata'/><readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/><source network='default'/><target dev='vnet3'/><model type='virtio'/>
    </interface>
    <serial type='file'><source path='/var/log/golden-serial.log'/><target port='0'/></serial>
    <serial type='unix'><source mode='bind' path='/run/console/golden.sock'/><target port='1'/></serial>
    <parallel type='unix'><source mode='bind' path='/run/console/par.sock'/><target port='0'/></parallel>
    <channel type='unix'><source mode='bind' path='/run/libvirt/qemu/channel/7-golden/org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <graphics type='vnc' port='5901' autoport='no' listen='127.0.0.1'/>
    <video><model type='vga'/></video>
  </devices>
  <seclabel type='dynamic' model='apparmor' relabel='yes'><label>libvirt-4f2c9a0e</label></seclabel>
</domain>)";

TemplateEdits edits() {
  TemplateEdits e;
  e.name = "web-01";
  e.uuid = "9d7e8f60-2222-4b4b-8c8c-abcdefabcdef";
  e.macs = std::vector<std::string>{"52:54:00:01:02:03"};
  e.disks = {{"vda", "/srv/pool/web-01.qcow2", "qcow2"}};
  e.metadata = Metadata{"clone", {{"golden", "domain:golden"}}};
  return e;
}

}  // namespace

TEST_CASE("virt::instantiate_template gives a template a new identity and keeps its devices", "[virt][template]") {
  auto out = instantiate_template(k_golden, edits());
  REQUIRE(out);
  auto spec = decode_domain(*out);
  REQUIRE(spec);
  CHECK(spec->name == "web-01");
  CHECK(spec->uuid == "9d7e8f60-2222-4b4b-8c8c-abcdefabcdef");
  REQUIRE(spec->disks.size() == 1);
  CHECK(spec->disks[0].path == "/srv/pool/web-01.qcow2");
  CHECK(spec->disks[0].format == "qcow2");
  REQUIRE(spec->nics.size() == 1);
  CHECK(spec->nics[0].mac == "52:54:00:01:02:03");
  CHECK(spec->firmware == Firmware::uefi);
  CHECK(spec->uefi.nvram.empty());
  CHECK(spec->uefi.nvram_template == "/usr/share/OVMF/OVMF_VARS_4M.fd");
  CHECK(spec->metadata == Metadata{"clone", {{"golden", "domain:golden"}}});
  // Gone: what belongs to the template's own instance.
  for (const char* gone : {"id=\"7\"", "a1b2c3d4", "4f2c9a0e", "backingStore", "/srv/base.raw", "vnet3", "5901",
                           "golden_VARS", "7-golden", "seclabel", "52:54:00:aa:bb:cc"}) {
    CHECK_THAT(*out, !Contains(gone));
  }
  // Kept: the devices and settings of the golden.
  for (const char* kept : {"/srv/tools.iso", "<readonly />", "<video>", "host-model", "ACME", "pc-q35-7.2",
                           "autoport=\"yes\"", "/var/log/web-01-serial.log", "org.qemu.guest_agent.0",
                           "/run/console/web-01.sock", "/run/console/web-01-par.sock"}) {
    CHECK_THAT(*out, Contains(kept));
  }
}

TEST_CASE("virt::instantiate_template drops MACs, resizes, and refuses what does not fit", "[virt][template]") {
  auto e = edits();
  e.macs.reset();
  e.memory_bytes = 512ull << 20;
  e.vcpus = 4;
  e.uuid.clear();
  auto out = instantiate_template(k_golden, e);
  REQUIRE(out);
  CHECK_THAT(*out, !Contains("<mac"));
  CHECK_THAT(*out, !Contains("<uuid>"));
  CHECK_THAT(*out, !Contains("topology"));  // 1x2x1 is not 4 vCPUs
  auto spec = decode_domain(*out);
  REQUIRE(spec);
  CHECK(spec->memory_bytes == 512ull << 20);
  CHECK(spec->vcpus == 4);

  auto refused = [](const TemplateEdits& bad, const char* what) {
    auto r = instantiate_template(k_golden, bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::invalid_argument);
    CHECK_THAT(r.error().message(), Contains(what));
  };
  refused([] { auto b = edits(); b.disks.clear(); return b; }(), "writable disk vda");
  refused([] { auto b = edits(); b.disks.push_back({"vdz", "/x", "raw"}); return b; }(), "no disk vdz");
  refused([] { auto b = edits(); b.macs->push_back("52:54:00:01:02:04"); return b; }(), "2 MAC addresses for 1");
  refused([] { auto b = edits(); b.macs = std::vector<std::string>{"zz"}; return b; }(), "'zz'");
  refused([] { auto b = edits(); b.name.clear(); return b; }(), "no name");
  refused([] { auto b = edits(); b.uuid = "x"; return b; }(), "not a UUID");
}

TEST_CASE("virt::instantiate_template's output is defined by libvirt beside its template", "[virt][template][libvirt]") {
  auto conn = Connection::open("test:///default");
  REQUIRE(conn);
  DomainSpec golden;
  golden.type = VirtType::qemu;
  golden.name = "golden & co";
  golden.memory_bytes = 64ull << 20;
  golden.disks = {{"/srv/golden.qcow2", DiskSourceKind::file, "qcow2", DiskBus::virtio, "", 1, false, ""}};
  golden.nics = {{NicKind::network, "default", NicModel::virtio, "52:54:00:00:00:01", std::nullopt}};
  REQUIRE((*conn)->define(encode_domain(golden).value()));
  auto xml = (*conn)->xml(golden.name, k_xml_inactive);
  REQUIRE(xml);
  auto e = edits();
  e.uuid.clear();
  auto clone = instantiate_template(*xml, e);
  REQUIRE(clone);
  auto name = (*conn)->define(*clone);
  REQUIRE(name);
  auto info = (*conn)->info(*name);
  REQUIRE(info);
  CHECK(info->metadata == e.metadata);
  auto macs = (*conn)->macs_in_use();
  REQUIRE(macs);
  CHECK(macs->contains("52:54:00:00:00:01"));
  CHECK(macs->contains("52:54:00:01:02:03"));
  REQUIRE((*conn)->undefine(*name));
  REQUIRE((*conn)->undefine(golden.name));
}
