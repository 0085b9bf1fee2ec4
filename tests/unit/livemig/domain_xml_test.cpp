#include "utsushi/livemig/domain_xml.h"

#include <catch2/catch.hpp>

using namespace utsushi;
using namespace utsushi::livemig;
using Catch::Matchers::Contains;

namespace {
const char* const k_plain = R"(<domain type='qemu'>
  <name>web1</name>
  <uuid>c4bd2b3c-9e1b-476e-8fb1-254de414bbcd</uuid>
  <memory unit='KiB'>262144</memory>
  <devices><serial type='file'><source path='/tmp/a &amp; b.log'/></serial></devices>
</domain>)";
}  // namespace

TEST_CASE("livemig::domain_identity reads name and uuid") {
  auto id = domain_identity(k_plain);
  REQUIRE(id);
  CHECK(id->name == "web1");
  CHECK(id->uuid == "c4bd2b3c-9e1b-476e-8fb1-254de414bbcd");
}

TEST_CASE("livemig::domain_identity refuses what is not a domain") {
  CHECK(domain_identity("<network><name>x</name></network>").error().code() == Errc::invalid_argument);
  CHECK(domain_identity("<domain><name>x</name>").error().code() == Errc::invalid_argument);
  CHECK(domain_identity("<domain type='qemu'/>").error().code() == Errc::invalid_argument);
}

TEST_CASE("livemig::incoming_domain_xml adds -incoming defer in the qemu namespace") {
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

TEST_CASE("livemig::incoming_domain_xml reuses an existing prefix and command line") {
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

TEST_CASE("livemig::incoming_domain_xml refuses a second -incoming") {
  const char* xml = R"(<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>x</name><qemu:commandline><qemu:arg value='-incoming'/><qemu:arg value='tcp:0:4444'/></qemu:commandline>
</domain>)";
  CHECK(incoming_domain_xml(xml).error().code() == Errc::not_supported);
}

TEST_CASE("livemig::incoming_domain_xml avoids a qemu prefix bound elsewhere") {
  const char* xml = R"(<domain type='qemu' xmlns:qemu='urn:other'><name>x</name></domain>)";
  auto out = incoming_domain_xml(xml);
  REQUIRE(out);
  CHECK_THAT(*out, Contains("xmlns:qemu1=\"http://libvirt.org/schemas/domain/qemu/1.0\""));
  CHECK_THAT(*out, Contains("<qemu1:arg value=\"defer\" />"));
}

TEST_CASE("livemig::without_incoming_defer undoes incoming_domain_xml") {
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

TEST_CASE("livemig::without_incoming_defer keeps other arguments") {
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
