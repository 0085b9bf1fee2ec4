#include "utsushi/virt/domain_xml.h"

#include <catch2/catch.hpp>

using namespace utsushi;
using namespace utsushi::virt;
using Catch::Matchers::Contains;

namespace {
const char* const k_plain = R"(<domain type='qemu'>
  <name>web1</name>
  <uuid>c4bd2b3c-9e1b-476e-8fb1-254de414bbcd</uuid>
  <memory unit='KiB'>262144</memory>
  <devices><serial type='file'><source path='/tmp/a &amp; b.log'/></serial></devices>
</domain>)";
}  // namespace

TEST_CASE("virt::domain_identity reads name and uuid") {
  auto id = domain_identity(k_plain);
  REQUIRE(id);
  CHECK(id->name == "web1");
  CHECK(id->uuid == "c4bd2b3c-9e1b-476e-8fb1-254de414bbcd");
}

TEST_CASE("virt::domain_identity refuses what is not a domain") {
  CHECK(domain_identity("<network><name>x</name></network>").error().code() == Errc::invalid_argument);
  CHECK(domain_identity("<domain><name>x</name>").error().code() == Errc::invalid_argument);
  CHECK(domain_identity("<domain type='qemu'/>").error().code() == Errc::invalid_argument);
}

TEST_CASE("virt::incoming_domain_xml adds -incoming defer in the qemu namespace") {
  auto out = incoming_domain_xml(k_plain);
  REQUIRE(out);
  CHECK_THAT(*out, Contains("xmlns:qemu=\"http://libvirt.org/schemas/domain/qemu/1.0\""));
  CHECK_THAT(*out, Contains("<qemu:commandline>"));
  CHECK_THAT(*out, Contains("<qemu:arg value=\"-incoming\" />\n    <qemu:arg value=\"defer\" />"));
  // The rest survives, escaping included, and the result is a valid domain again.
  CHECK_THAT(*out, Contains("/tmp/a &amp; b.log"));
  auto id = domain_identity(*out);
  REQUIRE(id);
  CHECK(id->name == "web1");
}

TEST_CASE("virt::incoming_domain_xml reuses an existing prefix and command line") {
  const char* xml = R"(<domain type='kvm' xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>db</name>
  <q:commandline><q:arg value='-no-hpet'/></q:commandline>
</domain>)";
  auto out = incoming_domain_xml(xml);
  REQUIRE(out);
  CHECK_THAT(*out, Contains("<q:arg value=\"-no-hpet\" />\n    <q:arg value=\"-incoming\" />"));
  CHECK(out->find("xmlns:qemu") == std::string::npos);
  CHECK(out->find("<q:commandline>") == out->rfind("<q:commandline>"));  // still one
}

TEST_CASE("virt::incoming_domain_xml refuses a second -incoming") {
  const char* xml = R"(<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>x</name><qemu:commandline><qemu:arg value='-incoming'/><qemu:arg value='tcp:0:4444'/></qemu:commandline>
</domain>)";
  CHECK(incoming_domain_xml(xml).error().code() == Errc::not_supported);
}

TEST_CASE("virt::incoming_domain_xml avoids a qemu prefix bound elsewhere") {
  const char* xml = R"(<domain type='qemu' xmlns:qemu='urn:other'><name>x</name></domain>)";
  auto out = incoming_domain_xml(xml);
  REQUIRE(out);
  CHECK_THAT(*out, Contains("xmlns:qemu1=\"http://libvirt.org/schemas/domain/qemu/1.0\""));
  CHECK_THAT(*out, Contains("<qemu1:arg value=\"defer\" />"));
}

TEST_CASE("virt::without_incoming_defer undoes incoming_domain_xml") {
  auto in = incoming_domain_xml(k_plain);
  REQUIRE(in);
  auto out = without_incoming_defer(*in);
  REQUIRE(out);
  CHECK_THAT(*out, !Contains("-incoming"));
  CHECK_THAT(*out, !Contains("commandline"));
  CHECK_THAT(*out, Contains("/tmp/a &amp; b.log"));
  // So a guest livemig received can be moved on again.
  auto again = incoming_domain_xml(*out);
  REQUIRE(again);
  CHECK_THAT(*again, Contains("<qemu:arg value=\"-incoming\" />\n    <qemu:arg value=\"defer\" />"));
}

TEST_CASE("virt::without_incoming_defer keeps other arguments") {
  const char* xml = R"(<domain type='qemu' xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web1</name>
  <q:commandline><q:arg value='-incoming'/><q:arg value='tcp:0:4444'/><q:arg value='-incoming'/><q:arg value='defer'/><q:arg value='-s'/></q:commandline>
</domain>)";
  auto out = without_incoming_defer(xml);
  REQUIRE(out);
  CHECK_THAT(*out, Contains("<q:arg value=\"-incoming\" />\n    <q:arg value=\"tcp:0:4444\" />\n    <q:arg value=\"-s\" />"));
  CHECK_THAT(*out, !Contains("defer"));
  CHECK(without_incoming_defer("<network/>").error().code() == Errc::invalid_argument);
}

namespace {
Result<void> check_with(const std::string& extra, const std::string& ns = {}) {
  return check_incoming_domain("<domain type='qemu'" + ns + "><name>web1</name>" + extra + "</domain>");
}
const std::string k_qemu_ns = " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'";
}  // namespace

TEST_CASE("virt::check_incoming_domain accepts an ordinary guest") {
  CHECK(check_incoming_domain(k_plain));
  CHECK(check_with("<seclabel type='dynamic' model='selinux' relabel='yes'><label>x</label></seclabel>"));
  CHECK(check_with("<seclabel type='none' model='none'/>"));  // a source host without a security driver
  CHECK(check_with("<qemu:commandline/><qemu:capabilities/>", k_qemu_ns));
  CHECK(check_with("<devices><disk type='file'><source file='/a'><seclabel model='dac' relabel='yes'/></source>"
                   "</disk></devices>"));
  // What livemig itself received earlier, once without_incoming_defer() ran on the sender.
  auto in = incoming_domain_xml(k_plain);
  REQUIRE(in);
  auto out = without_incoming_defer(*in);
  REQUIRE(out);
  CHECK(check_incoming_domain(*out));
  CHECK(check_incoming_domain("<network/>").error().code() == Errc::invalid_argument);
}

TEST_CASE("virt::check_incoming_domain refuses what would reach the host") {
  struct Case {
    std::string extra, ns, element;
  };
  const Case cases[] = {
      {"<qemu:commandline><qemu:arg value='-s'/></qemu:commandline>", k_qemu_ns, "<qemu:commandline>"},
      {"<q:capabilities><q:del capability='sandbox'/></q:capabilities>",
       " xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'", "<q:capabilities>"},
      {"<qemu:override><qemu:device alias='x'/></qemu:override>", k_qemu_ns, "<qemu:override>"},
      // The QEMU namespace as the default namespace of the element.
      {"<commandline xmlns='http://libvirt.org/schemas/domain/qemu/1.0'><arg value='-s'/></commandline>", "",
       "<commandline>"},
      {"<devices><hostdev mode='subsystem' type='pci'/></devices>", "", "<hostdev type='pci'>"},
      {"<devices><interface type='hostdev'/></devices>", "", "<interface type='hostdev'>"},
      {"<seclabel type='none'/>", "", "<seclabel type='none'>"},
      {"<seclabel type='none' model='selinux'/>", "", "<seclabel type='none'>"},
      {"<seclabel type='static' model='dac'><label>+0:+0</label></seclabel>", "", "<seclabel type='static'>"},
      {"<seclabel type='dynamic' relabel='no'/>", "", "<seclabel type='dynamic'>"},
      {"<seclabel type='dynamic'><baselabel>unconfined_t</baselabel></seclabel>", "", "<seclabel type='dynamic'>"},
      {"<devices><disk type='file'><source file='/a'><seclabel relabel='no'/></source></disk></devices>", "",
       "<seclabel>"},
      {"<devices><disk type='file'><source file='/a'><seclabel><label>x</label></seclabel></source></disk>"
       "</devices>",
       "", "<seclabel>"},
  };
  for (const auto& c : cases) {
    INFO(c.extra);
    auto r = check_with(c.extra, c.ns);
    REQUIRE(!r);
    CHECK(r.error().code() == Errc::permission_denied);
    CHECK_THAT(r.error().message(), Contains("domain web1") && Contains("refusing " + c.element));
  }
}

TEST_CASE("virt::graphics_with_password finds protected consoles") {
  auto none = graphics_with_password(k_plain);
  REQUIRE(none);
  CHECK(none->empty());
  auto two = graphics_with_password(R"(<domain><name>g</name><devices>
    <graphics type='vnc' port='-1' passwd='s3cret'/><graphics type='sdl'/><graphics type='spice' passwd=''/>
  </devices></domain>)");
  REQUIRE(two);
  CHECK(*two == std::vector<std::string>{"vnc", "spice"});
}

TEST_CASE("virt::relocated_disks_xml moves named file disks and keeps the rest") {
  const std::string xml = R"(<domain type='qemu'><name>g</name><devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/src/a.qcow2' index='2'/>
      <backingStore type='file'><format type='qcow2'/><source file='/golden.qcow2'/></backingStore>
      <target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/shared/b.raw'/>
      <target dev='vdb' bus='virtio'/></disk>
    <disk type='block' device='disk'><source dev='/src/a.qcow2'/><target dev='vdc'/></disk>
  </devices></domain>)";
  auto moved = relocated_disks_xml(xml, {{"/src/a.qcow2", "/dst/a.qcow2"}});
  REQUIRE(moved);
  CHECK_THAT(*moved, Contains("file=\"/dst/a.qcow2\"") && Contains("index=\"2\""));
  CHECK_THAT(*moved, Contains("/golden.qcow2") && Contains("/shared/b.raw") && Contains("dev=\"/src/a.qcow2\""));
  CHECK_THAT(*moved, !Contains("file=\"/src/a.qcow2\""));

  for (const auto& bad : std::vector<DiskMove>{{"/src/none.qcow2", "/dst/x"}, {"/src/a.qcow2", ""}}) {
    auto r = relocated_disks_xml(xml, {bad});
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::invalid_argument);
  }
  const std::string twice = R"(<domain><name>g</name><devices>
    <disk type='file'><source file='/s/x'/><target dev='vda'/></disk>
    <disk type='file'><source file='/s/x'/><target dev='vdb'/></disk></devices></domain>)";
  CHECK_FALSE(relocated_disks_xml(twice, {{"/s/x", "/d/x"}}));
  CHECK_FALSE(relocated_disks_xml("<nope/>", {}));
}
