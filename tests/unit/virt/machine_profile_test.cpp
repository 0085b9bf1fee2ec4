#include "utsushi/virt/machine_profile.h"

#include <catch2/catch.hpp>

#include "result_printer.h"

#include <fstream>

#include "test_support.h"

using namespace utsushi;
using namespace utsushi::virt;
using Catch::Matchers::Contains;

namespace {

// A version-1 profile exactly as p2v capture wrote it before the typed
// profile existed (keys sorted, as nlohmann::json dumps them).
const char* const k_v1_host = R"({
  "cpus": {"cores": 4, "count": 8, "flags": ["aes", "avx2", "lm", "vmx"], "model": "Intel(R) Xeon(R) E-2234", "vendor": "GenuineIntel"},
  "disks": [{"image": "/srv/out/sda.qcow2", "model": "SAMSUNG MZ7LH480", "partition-table": "gpt", "rotational": false, "size": 480103981056, "source": "/dev/sda"}],
  "dmi": {"product": "PowerEdge R240", "vendor": "Dell Inc."},
  "firmware": "uefi",
  "hostname": "srv1",
  "memory": {"bytes": 33402609664},
  "nics": [{"bus-path": "0000:02:00.0", "driver": "tg3", "mac": "D0:94:66:11:22:33", "name": "eno1"},
           {"bus-path": "0000:02:00.1", "driver": null, "mac": "d0:94:66:11:22:34", "name": "eno2"}],
  "source": "running-machine",
  "type": "utsushi-hardware-profile",
  "version": 1
})";

const char* const k_v1_images = R"({"cpus": null, "disks": [{"image": "a.qcow2", "partition-table": "dos",
  "size": 1073741824, "source": "/srv/a.raw"}], "firmware": "bios", "memory": null, "nics": null,
  "source": "images", "type": "utsushi-hardware-profile", "version": 1})";

MachineProfile host_profile() {
  return decode_profile(k_v1_host).value();
}

}  // namespace

TEST_CASE("virt::decode_profile reads the version-1 documents p2v wrote", "[virt][profile]") {
  auto p = decode_profile(k_v1_host);
  REQUIRE(p);
  CHECK(p->source == ProfileSource::host);
  CHECK(p->hostname == "srv1");
  REQUIRE(p->cpus);
  CHECK(p->cpus->count == 8);
  CHECK(p->cpus->cores == 4);
  CHECK(p->cpus->vendor == "GenuineIntel");
  CHECK(p->memory_bytes == 33402609664u);
  REQUIRE(p->nics);
  REQUIRE(p->nics->size() == 2);
  CHECK((*p->nics)[0].driver == "tg3");
  CHECK_FALSE((*p->nics)[1].driver);
  CHECK(p->firmware == FirmwareKind::uefi);
  CHECK(p->dmi == DmiInfo{"Dell Inc.", "PowerEdge R240"});
  REQUIRE(p->disks.size() == 1);
  CHECK(p->disks[0].rotational == false);
  CHECK(p->disks[0].model == "SAMSUNG MZ7LH480");

  auto images = decode_profile(k_v1_images);
  REQUIRE(images);
  CHECK(images->source == ProfileSource::images);
  CHECK_FALSE(images->cpus);
  CHECK_FALSE(images->memory_bytes);
  CHECK_FALSE(images->nics);
  CHECK_FALSE(images->disks[0].model);
}

TEST_CASE("virt::encode_profile round-trips through decode_profile and a file", "[virt][profile]") {
  MachineProfile p = host_profile();
  (*p.nics)[0].addresses = {"192.0.2.10/24", "2001:db8::10/64"};
  p.firmware_evidence = "/sys/firmware/efi exists";
  std::string text = encode_profile(p);
  CHECK_THAT(text, Contains("\"version\": 2"));
  CHECK_THAT(text, Contains("\"source\": \"running-machine\""));
  CHECK(decode_profile(text).value() == p);

  MachineProfile images = decode_profile(k_v1_images).value();
  std::string images_text = encode_profile(images);
  CHECK_THAT(images_text, Contains("\"nics\": null"));
  CHECK_THAT(images_text, !Contains("hostname"));
  CHECK(decode_profile(images_text).value() == images);

  test::TempDir dir;
  REQUIRE(write_profile(p, dir.file("hw.json")));
  CHECK(read_profile(dir.file("hw.json")).value() == p);
  auto missing = read_profile(dir.file("nothing.json"));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code() == Errc::not_found);
}

TEST_CASE("virt::decode_profile is strict and never throws", "[virt][profile]") {
  auto refused = [](const std::string& text, Errc code, const char* what) {
    auto r = decode_profile(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == code);
    CHECK_THAT(r.error().message(), Contains(what));
  };
  const std::string head = R"({"type": "utsushi-hardware-profile", "version": 2, "source": "images", "firmware": "bios", )";
  refused("{", Errc::invalid_argument, "not JSON");
  refused("[1]", Errc::invalid_argument, "not a JSON object");
  refused(R"({"type": "x"})", Errc::invalid_argument, "type");
  refused(R"({"type": "utsushi-hardware-profile", "version": 3})", Errc::not_supported, "version 3");
  refused(R"({"type": "utsushi-hardware-profile", "version": "1"})", Errc::invalid_argument, "version");
  refused(head + R"("disks": {}})", Errc::invalid_argument, "disks");
  refused(head + R"("disks": [{"source": 5, "size": 1}]})", Errc::invalid_argument, "disks[0].source");
  refused(head + R"("disks": [{"source": "/a", "size": -1}]})", Errc::invalid_argument, "disks[0].size");
  refused(head + R"("disks": [{"source": "/a", "size": 1.5}]})", Errc::invalid_argument, "disks[0].size");
  refused(head + R"("disks": [], "cpus": {"count": "8", "cores": 4}})", Errc::invalid_argument, "cpus.count");
  refused(head + R"("disks": [], "nics": [{"name": "eth0"}]})", Errc::invalid_argument, "nics[0].mac");
  refused(head + R"("disks": [], "nics": [{"name": "e", "mac": "m", "addresses": [1]}]})", Errc::invalid_argument,
          "nics[0].addresses");
  refused(head + R"("disks": [], "memory": 5})", Errc::invalid_argument, "memory");
  refused(R"({"type": "utsushi-hardware-profile", "version": 2, "source": "cloud", "firmware": "bios", "disks": []})",
          Errc::invalid_argument, "cloud");
  refused(R"({"type": "utsushi-hardware-profile", "version": 2, "source": "images", "firmware": "coreboot", "disks": []})",
          Errc::invalid_argument, "coreboot");
}

TEST_CASE("virt::from_profile sizes a domain like the captured machine", "[virt][profile]") {
  MachineProfile p = host_profile();
  ProfileDomainOptions o;
  o.name = "srv1";
  o.accel = Accel::tcg;  // as --accel tcg gives it: no probe
  o.disks = {{"/srv/out/srv1-sda.qcow2", DiskSourceKind::file, "qcow2", DiskBus::virtio, "", std::nullopt, false, ""}};
  o.nic_kind = NicKind::bridge;
  o.nic_source = "br0";
  auto s = from_profile(p, o);
  REQUIRE(s);
  CHECK(s->type == VirtType::qemu);
  CHECK(s->machine == Machine::q35);
  CHECK(s->vcpus == 8);
  CHECK(s->topology == CpuTopology{1, 4, 2});
  CHECK(s->memory_bytes == 31856ull << 20);  // 33402609664 bytes rounded up to MiB
  CHECK(s->firmware == Firmware::uefi);
  CHECK(s->uefi == debian_ovmf());
  REQUIRE(s->nics.size() == 2);
  CHECK(s->nics[0].mac == "d0:94:66:11:22:33");
  CHECK(s->nics[1].mac == "d0:94:66:11:22:34");
  CHECK(s->nics[0].kind == NicKind::bridge);
  CHECK(s->nics[0].source == "br0");
  CHECK(s->disks[0].boot_order == 1u);
  CHECK(encode_domain(*s));

  // Options win; an images profile knows nothing of the hardware.
  o.vcpus = 2;
  o.memory_bytes = 2ull << 30;
  o.firmware = Firmware::bios;
  s = from_profile(p, o);
  REQUIRE(s);
  CHECK(s->vcpus == 2);
  CHECK_FALSE(s->topology);
  CHECK(s->memory_bytes == 2ull << 30);
  CHECK(s->firmware == Firmware::bios);
  ProfileDomainOptions plain;
  plain.name = "img";
  plain.disks = o.disks;
  plain.accel = Accel::kvm;
  auto bare = from_profile(decode_profile(k_v1_images).value(), plain);
  REQUIRE(bare);
  CHECK(bare->type == VirtType::kvm);
  CHECK(bare->vcpus == 1);
  CHECK(bare->memory_bytes == 1ull << 30);
  REQUIRE(bare->nics.size() == 1);
  CHECK(bare->nics[0].mac.empty());
  CHECK(bare->firmware == Firmware::bios);

  plain.disks.clear();
  CHECK(from_profile(p, plain).error().code() == Errc::invalid_argument);
  (*p.nics)[0].mac = "garbage";
  CHECK_THAT(from_profile(p, o).error().message(), Contains("garbage"));
}
