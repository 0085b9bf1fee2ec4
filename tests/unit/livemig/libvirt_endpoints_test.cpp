// libvirt_endpoints.h, the receiver's side of --copy-storage before it
// starts anything: a sender played by hand sends the domain's XML and its
// disk list (domain_disks) to receive_libvirt on libvirt's in-process test
// driver. A list the receiver does not agree to, a hostile list, a backing
// file whose content differs and an image name that exists are refused
// (ABORT to the sender) with no file created and no domain started. The path
// through a real libvirtd and QEMU is e2e.livemig.libvirt_disks_*.
#include "utsushi/livemig/libvirt_endpoints.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "test_support.h"
#include "utsushi/livemig/disk_session.h"
#include "utsushi/livemig/file_hash.h"
#include "utsushi/livemig/handshake.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace std::chrono;
using Catch::Matchers::Contains;

namespace {

const std::string k_token = "libvirt-endpoints-unit-token-0123";

std::string domain_xml(const std::string& disk) {
  return "<domain type='qemu'><name>lm-unit</name><memory unit='MiB'>64</memory><os><type>hvm</type></os>"
         "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='" +
         disk + "'/><target dev='vda' bus='virtio'/></disk></devices></domain>";
}

struct Exchange {
  ReceiveLibvirtResult received;
  Frame answer;  // the receiver's reply to the sender's two frames
};

// One session of receive_libvirt(options) on test:///default against a
// sender that sends `xml` and then `disks` as domain_disks.
Exchange exchange(ReceiveLibvirtOptions options, const std::string& xml, const std::string& disks) {
  std::promise<std::uint16_t> port;
  options.uri = "test:///default";
  options.serve.listen = "127.0.0.1:0";
  options.serve.token = k_token;
  options.serve.accept_timeout = seconds(20);
  options.serve.on_listening = [&](std::uint16_t p) { port.set_value(p); };
  Exchange ex;
  std::thread receiver([&] { ex.received = receive_libvirt(options); });
  auto sender = [&]() -> Result<Frame> {
    auto to = UTSUSHI_TRY(parse_host_port("127.0.0.1:" + std::to_string(port.get_future().get())));
    Link link(UTSUSHI_TRY(tcp_connect(to, seconds(5))), LinkOptions{0, seconds(10)});
    UTSUSHI_TRY(handshake_client(link, k_token, seconds(10)));
    UTSUSHI_TRY(link.send(FrameType::domain_xml, as_bytes(std::string_view(xml))));
    UTSUSHI_TRY(link.send(FrameType::domain_disks, as_bytes(std::string_view(disks))));
    auto answer = link.recv(seconds(20));
    link.shutdown();
    return answer;
  };
  auto answer = sender();
  receiver.join();
  INFO((answer ? "" : answer.error().message()));
  REQUIRE(answer);
  ex.answer = std::move(*answer);
  return ex;
}

void check_refused(const Exchange& ex, const std::string& why) {
  CHECK(ex.answer.header.type == FrameType::abort);
  CHECK_THAT(ex.answer.text(), Contains(why));
  REQUIRE(ex.received.sessions.size() == 1);
  const auto& s = ex.received.sessions[0];
  CHECK(s.domain == "lm-unit");
  CHECK_THAT(s.outcome.report.error, Contains(why));
  CHECK(s.outcome.report.status != ReportStatus::ok);
}

}  // namespace

TEST_CASE("livemig receive --libvirt --copy-storage: refusals before anything is created",
          "[livemig][libvirt][disk_images]") {
  test::TempDir dir;
  std::string store = dir.file("store");
  std::filesystem::create_directory(store);
  std::string base = dir.file("base.raw");
  test::make_sparse_file(base, 1 << 20);
  test::write_at(base, 8192, test::pattern(4096, 5));
  SessionDisk disk{"libvirt-1-format", "/machine/peripheral/virtio-disk0/virtio-backend", 1 << 20,
                   "/src/vm/root.qcow2", "qcow2", base, "raw", file_content_hash(base).value()};
  std::string xml = domain_xml(disk.file);
  ReceiveLibvirtOptions o;
  o.receive.copy_storage = true;
  o.storage_dir = store;

  SECTION("the sender copies disks, the receiver does not take them") {
    o.receive.copy_storage = false;
    auto ex = exchange(o, xml, disks_frame_text({disk}));
    check_refused(ex, "start the receiver with --copy-storage");
  }
  SECTION("the receiver takes disks, the sender sends none") {
    auto ex = exchange(o, xml, "[]");
    check_refused(ex, "give the sender --copy-storage");
  }
  SECTION("a hostile disk list") {
    auto ex = exchange(o, xml, R"([{"node": "a", "size": -1}])");
    check_refused(ex, "disk list");
  }
  SECTION("a backing file whose content differs here") {
    disk.backing_hash = std::string(32, 'f');
    auto ex = exchange(o, xml, disks_frame_text({disk}));
    check_refused(ex, "differs");
    CHECK_THAT(ex.answer.text(), Contains(base));
    CHECK(ex.received.sessions.at(0).outcome.report.status == ReportStatus::refused);
  }
  SECTION("an image name that exists (left by a receiver that was killed)") {
    std::ofstream(store + "/root.qcow2") << "leftover";
    auto ex = exchange(o, xml, disks_frame_text({disk}));
    check_refused(ex, store + "/root.qcow2 already exists");
    CHECK(std::filesystem::file_size(store + "/root.qcow2") == 8);
    std::filesystem::remove(store + "/root.qcow2");
  }
  SECTION("a disk the domain does not have") {
    disk.file = "/src/vm/other.qcow2";
    auto ex = exchange(o, xml, disks_frame_text({disk}));
    check_refused(ex, "/src/vm/other.qcow2");
  }
  CHECK(std::filesystem::is_empty(store));
}
