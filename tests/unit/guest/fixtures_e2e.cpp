// The guest library against real disks: one appliance launch over the
// physical-server, physical-server-uefi and data-disk fixtures (session,
// inspection of each OS, probing, the device map, a Target in both modes,
// mounting by layout, cancellation). Needs the fixtures (ctest fixture
// utsushi_fixtures); registered as e2e.guest.session.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "utsushi/common/cancel.h"
#include "utsushi/guest/device_names.h"
#include "utsushi/guest/inspect.h"
#include "utsushi/guest/operation.h"

using namespace utsushi;
using namespace utsushi::guest;

namespace {

nlohmann::json fixture(const std::string& name) {
  const char* dir = std::getenv("UTSUSHI_FIXTURES_DIR");
  std::ifstream in(std::string(dir != nullptr ? dir : "/var/tmp/utsushi-fixtures") + "/fixtures.json");
  REQUIRE(in.good());
  nlohmann::json all = nlohmann::json::parse(in);
  for (const auto& f : all) {
    if (f["name"] == name) {
      return f;
    }
  }
  FAIL("fixture " << name << " missing: run tests/fixtures/build");
  return {};
}

std::string fs_uuid(const nlohmann::json& fx, const std::string& mountpoint) {
  for (const auto& p : fx["partition_table"]["partitions"]) {
    if (p.value("mountpoint", "") == mountpoint) {
      return p["fs_uuid"];
    }
  }
  return {};
}

// Phase timings on stderr: the appliance is slow under TCG on a loaded host.
void phase(const char* what) {
  static auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "[%6.1f s] %s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), what);
}

template <class T>
T ok(Result<T>&& r) {
  if (!r) {
    FAIL(r.error().message());
  }
  if constexpr (!std::is_void_v<T>) {
    return std::move(r).value();
  }
}

bool has_interface(const GuestOs& os, NetworkSystem system, const std::string& name) {
  for (const NetworkConfig& c : os.network) {
    if (c.system == system && std::find(c.interfaces.begin(), c.interfaces.end(), name) != c.interfaces.end()) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("a session over three fixtures: inspection, probing, device names, targets, layouts", "[guest][e2e]") {
  const auto bios = fixture("physical-server"), uefi = fixture("physical-server-uefi"), data = fixture("data-disk");
  SessionOptions options;
  options.identifier = "e2e-guest";
  Session s = ok(Session::create(options));
  for (const auto* fx : {&bios, &uefi, &data}) {
    ok(s.add_disk({(*fx)["path"], (*fx)["format"], DiskAccess::read_only}));
  }
  phase("launch");
  ok(s.launch());
  phase("inspect");
  REQUIRE(s.disk_count() == 3);
  CHECK(ok(s.disk_device(2)) == "/dev/sdc");

  // Two operating systems: a plain inspect refuses, naming both.
  auto both = inspect(s);
  REQUIRE_FALSE(both);
  CHECK(both.error().code() == Errc::not_supported);
  CHECK(both.error().message().find("2 operating systems") != std::string::npos);
  auto none = inspect(s, {.root_disk = 2});
  REQUIRE_FALSE(none);
  CHECK(none.error().code() == Errc::not_supported);
  CHECK(none.error().message().find("no operating system found on disk 2") != std::string::npos);

  phase("BIOS server");
  GuestOs os = ok(inspect(s, {.root_disk = 0}));
  CHECK(os.type == "linux");
  CHECK(os.distro == "debian");
  CHECK(os.major_version == 12);
  CHECK(os.hostname == bios["hostname"]);
  CHECK(os.root == "/dev/sda2");
  CHECK(os.mount_device("/boot") == "/dev/sda1");
  CHECK(os.mounts.front().mountpoint == "/");
  ok(mount_guest(s, os, MountMode::read_only));
  ok(probe_guest(s, os));
  CHECK(std::find(os.kernels.begin(), os.kernels.end(), bios["os"]["kernel_version"]) != os.kernels.end());
  CHECK(os.initramfs == InitramfsTool::initramfs_tools);
  CHECK(os.boot_loader.kind == BootLoaderKind::grub2);
  CHECK(os.boot_loader.config == "/boot/grub/grub.cfg");
  CHECK(os.boot_loader.mkconfig == "update-grub");
  CHECK(os.firmware == Firmware::bios);
  CHECK(os.esp.empty());
  CHECK(os.systemd);
  CHECK(os.link_files);
  CHECK(has_interface(os, NetworkSystem::ifupdown, bios["network"]["interface"]));
  CHECK(to_json(os)["firmware"] == "bios");

  // Device names across all three disks.
  phase("device map");
  DeviceMap map = ok(DeviceMap::scan(s));
  CHECK(map.stable_spec("/dev/sda2") == "UUID=" + fs_uuid(bios, "/"));
  CHECK(map.stable_spec("/dev/hdb3") == "UUID=" + fs_uuid(uefi, "/"));
  CHECK(map.find("LABEL=data-ext4") != nullptr);
  CHECK(map.find("/dev/mapper/utsushi_data-lv_data") != nullptr);
  CHECK(map.find("UUID=" + fs_uuid(bios, "/boot"))->device == "/dev/sda1");

  // A dry run records and writes nothing; reads see the plan.
  phase("targets");
  {
    Target plan(s, os, Mode::plan);
    CHECK(ok(plan.write("/etc/motd", "planned\n", "test")));
    CHECK(ok(plan.read("/etc/motd")) == std::optional<std::string>("planned\n"));
    CHECK(ok(s.read_file("/etc/motd")) != "planned\n");
    CHECK_FALSE(ok(plan.run({"true"}, "test")).has_value());
    CHECK(ok(plan.remove("/etc/hostname", "test")));
    CHECK_FALSE(ok(plan.exists("/etc/hostname")));
    CHECK(ok(s.exists("/etc/hostname")));
    CHECK(plan.take_changes().size() == 3);
  }
  // Applying writes (into the appliance's overlay: the disk was added read-only).
  {
    ok(mount_guest(s, os, MountMode::read_write));
    Target apply(s, os, Mode::apply);
    CHECK(ok(apply.write("/etc/utsushi-test/new", "hello\n", "test")));
    CHECK_FALSE(ok(apply.write("/etc/utsushi-test/new", "hello\n", "test")));  // unchanged: no change
    auto cat = ok(apply.run({"cat", "/etc/utsushi-test/new"}, "test"));
    REQUIRE(cat);
    CHECK(cat->exit_code == 0);
    CHECK(cat->output == "hello\n");
    auto failing = ok(s.run({"sh", "-c", "echo oops; exit 3"}));
    CHECK(failing.exit_code == 3);
    CHECK(failing.output == "oops\n");
    // write_file keeps a file's mode and group.
    std::string before = ok(s.run({"stat", "-c", "%a %g", "/etc/shadow"})).output;
    std::string shadow = ok(s.read_file("/etc/shadow"));
    ok(s.write_file("/etc/shadow", shadow + "\n"));
    CHECK(ok(s.run({"stat", "-c", "%a %g", "/etc/shadow"})).output == before);
    CHECK(apply.take_changes().size() == 2);

    // One-round-trip forms answer as their longer equivalents.
    CHECK(ok(s.read_file_if_exists("/etc/hostname")) == ok(s.read_file("/etc/hostname")));
    CHECK_FALSE(ok(s.read_file_if_exists("/etc/no-such-file")).has_value());
    CHECK_FALSE(ok(s.read_file_if_exists("/etc/hostname/below-a-file")).has_value());
    CHECK_FALSE(ok(s.lstat("/no-such-dir/x")).has_value());
    std::optional<FileStat> etc = ok(s.lstat("/etc"));
    REQUIRE(etc);
    CHECK(etc->is_dir());
    // A new file is 0644 root:root even over a stale temporary with another mode and owner.
    ok(s.run({"sh", "-c", "echo x > /etc/utsushi-test/fresh.utsushi-tmp; chmod 600 /etc/utsushi-test/fresh.utsushi-tmp; "
                          "chown 1000:1000 /etc/utsushi-test/fresh.utsushi-tmp"}));
    ok(s.write_file("/etc/utsushi-test/fresh", "a\n"));
    CHECK(ok(s.run({"stat", "-c", "%a %u %g", "/etc/utsushi-test/fresh"})).output == "644 0 0\n");
    CHECK_FALSE(ok(s.exists("/etc/utsushi-test/fresh.utsushi-tmp")));
    ok(s.write_file("/etc/utsushi-test/deeper/still/new", "b\n"));  // parents created
    CHECK(ok(s.read_file("/etc/utsushi-test/deeper/still/new")) == "b\n");
    // A replaced file keeps an unusual mode and owner.
    ok(s.run({"sh", "-c", "chmod 640 /etc/utsushi-test/fresh; chown 1000:1000 /etc/utsushi-test/fresh"}));
    ok(s.write_file("/etc/utsushi-test/fresh", "c\n"));
    CHECK(ok(s.run({"stat", "-c", "%a %u %g", "/etc/utsushi-test/fresh"})).output == "640 1000 1000\n");
    // Many globs: the union of each one's matches, in pattern order, once each.
    std::vector<std::string_view> globs = {"/etc/host*", "/etc/no-such-dir/*", "/etc/no-such-dir/deeper/*",
                                           "/etc/hostname", "/etc/*/interfaces", "/etc/ssh/ssh_host_*", "/*bin"};
    std::vector<std::string> want;
    for (std::string_view g : globs) {
      for (std::string& m : ok(s.glob(std::string(g)))) {
        if (m.size() > 1 && m.back() == '/') {
          m.pop_back();  // glob_expand marks directories
        }
        if (std::find(want.begin(), want.end(), m) == want.end()) {
          want.push_back(std::move(m));
        }
      }
    }
    CHECK(want.size() > 4);
    CHECK(ok(s.glob(std::span<const std::string_view>(globs))) == want);
  }

  // The UEFI server, then mounted again by layout alone.
  phase("UEFI server");
  GuestOs eos = ok(inspect(s, {.root_disk = 1}));
  ok(mount_guest(s, eos, MountMode::read_only));
  ok(probe_guest(s, eos));
  CHECK(eos.firmware == Firmware::uefi);
  CHECK(eos.esp == "/dev/sdb1");
  CHECK(eos.esp_mountpoint == "/boot/efi");
  MountLayout layout = ok(layout_of(s, eos, 1));
  REQUIRE(layout.entries.size() == 3);
  CHECK(layout.entries[0].mountpoint == "/");
  CHECK(layout.entries[0].partition == 3);
  CHECK(layout.entries[0].disk == 0);
  ok(mount_layout(s, layout, 1, 1, MountMode::read_only));
  CHECK(ok(s.read_file("/etc/hostname")) == std::string(uefi["hostname"]) + "\n");
  CHECK(ok(s.exists("/boot/efi/EFI")));

  // Cancellation ends a long command in the appliance at once.
  phase("cancel");
  auto t0 = std::chrono::steady_clock::now();
  std::thread canceller([] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    request_cancel();
  });
  auto slept = s.run({"sleep", "120"});
  canceller.join();  // the request is for good (common/cancel.h): this is the case's last step
  REQUIRE_FALSE(slept);
  CHECK(slept.error().code() == Errc::cancelled);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60));
  phase("done");
}
