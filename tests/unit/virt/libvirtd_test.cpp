// Tests against a real, private libvirtd. Hidden ([.libvirtd]): they need
// the daemon tests/e2e/virt/test_virt_libvirtd.py starts (as root) and
// describes through the environment:
//   UTSUSHI_TEST_LIBVIRT_URI   the daemon's URI
//   UTSUSHI_TEST_POOL_DIR      a directory for a storage pool
//   UTSUSHI_TEST_LIBVIRTD_PID  the daemon's PID (the "lost" test kills it)
#include <catch2/catch.hpp>

#include "result_printer.h"

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/process.h"
#include "utsushi/virt/connection.h"
#include "utsushi/virt/domain_spec.h"
#include "utsushi/virt/storage.h"

using namespace utsushi;
using namespace utsushi::virt;
using namespace std::chrono;
using Catch::Matchers::Contains;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    FAIL(std::string(name) + " is not set: run tests/e2e/virt/test_virt_libvirtd.py");
  }
  return v;
}

std::shared_ptr<Connection> connect() {
  auto c = Connection::open(env("UTSUSHI_TEST_LIBVIRT_URI"));
  REQUIRE(c);
  REQUIRE((*c)->driver() == "QEMU");
  return *c;
}

DomainSpec small_guest(const std::string& name, const std::string& uuid, const std::string& mac) {
  DomainSpec s;
  s.type = VirtType::qemu;  // TCG: this host's KVM does not run guests
  s.name = name;
  s.uuid = uuid;
  s.memory_bytes = 64ull << 20;
  s.nics = {{NicKind::network, "default", NicModel::virtio, mac, std::nullopt}};
  s.rng = false;
  s.metadata = Metadata{"clone", {}};
  return s;
}

nlohmann::json qemu_img_info(const std::string& path) {
  auto r = run_process({"qemu-img", "info", "--output=json", "-U", path});
  REQUIRE(r);
  INFO(r->output);
  REQUIRE(r->ok());
  return nlohmann::json::parse(r->output);
}

}  // namespace

TEST_CASE("virt::Connection on libvirtd: define refuses duplicates and replace=yes replaces a running one",
          "[.libvirtd]") {
  auto c = connect();
  // The private daemon has no network "default": the domain that is started
  // has no NIC.
  auto a = small_guest("vt-a", "a1a1a1a1-0000-4000-8000-000000000001", "52:54:00:10:00:01");
  a.nics.clear();
  REQUIRE(c->define(encode_domain(a).value()).value() == "vt-a");
  REQUIRE(c->start("vt-a", StartMode::paused));
  CHECK(c->info("vt-a").value().state == DomainState::paused);

  auto same_name = small_guest("vt-a", "a1a1a1a1-0000-4000-8000-000000000002", "52:54:00:10:00:02");
  auto r = c->define(encode_domain(same_name).value());
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::failed_precondition);
  auto same_uuid = small_guest("vt-b", a.uuid, "52:54:00:10:00:02");
  r = c->define(encode_domain(same_uuid).value());
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message(), Contains("vt-a"));
  CHECK(c->info("vt-a").value().active);  // a refusal touches nothing

  REQUIRE(c->define(encode_domain(same_name).value(), Replace::yes));
  auto info = c->info("vt-a");
  REQUIRE(info);
  CHECK_FALSE(info->active);
  CHECK(info->uuid == same_name.uuid);
  CHECK(info->metadata == Metadata{"clone", {}});
  auto macs = c->macs_in_use();
  REQUIRE(macs);
  CHECK(macs->contains("52:54:00:10:00:02"));
  CHECK_FALSE(macs->contains("52:54:00:10:00:01"));
  REQUIRE(c->undefine("vt-a"));

  // A transient domain, started paused then resumed: its MAC is in use while it runs.
  auto t = small_guest("vt-t", "", "52:54:00:10:00:03");
  t.nics.clear();
  REQUIRE(c->create_transient_paused(encode_domain(t).value()).value() == "vt-t");
  info = c->info("vt-t");
  REQUIRE(info);
  CHECK(info->state == DomainState::paused);
  CHECK_FALSE(info->persistent);
  REQUIRE(c->resume("vt-t"));
  CHECK(c->info("vt-t").value().state == DomainState::running);
  REQUIRE(c->destroy("vt-t"));
  CHECK_FALSE(c->exists("vt-t").value());
  REQUIRE(c->destroy("vt-t"));  // gone: nothing to do
}

TEST_CASE("virt storage on libvirtd: a qcow2 uploaded into a pool and an overlay volume on it", "[.libvirtd]") {
  auto c = connect();
  std::string dir = env("UTSUSHI_TEST_POOL_DIR");
  auto pool = ensure_dir_pool(*c, "vt-pool", dir);
  REQUIRE(pool);
  CHECK(pool->path == dir);
  CHECK(ensure_dir_pool(*c, "vt-pool", dir));  // found, not defined twice
  CHECK(ensure_dir_pool(*c, "vt-pool", dir + "/elsewhere").error().code() == Errc::failed_precondition);
  CHECK(ensure_dir_pool(*c, "vt-pool", "").value().path == dir);
  CHECK(ensure_dir_pool(*c, "vt-nopool", "").error().code() == Errc::not_found);

  // A golden with data at both ends and a hole between.
  test::TempDir tmp;
  std::string raw = tmp.file("golden.raw");
  test::make_sparse_file(raw, 64 << 20);
  test::write_at(raw, 0, test::pattern(1 << 20, 1));
  test::write_at(raw, 60 << 20, test::pattern(1 << 20, 2));
  std::string golden = tmp.file("golden & co.qcow2");
  auto conv = run_process({"qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, golden});
  REQUIRE(conv);
  REQUIRE(conv->ok());

  std::uint64_t last = 0, calls = 0;
  auto vol = upload_volume(*c, "vt-pool", "golden.qcow2", golden, [&](std::uint64_t done, std::uint64_t) {
    CHECK(done >= last);
    last = done;
    ++calls;
  });
  REQUIRE(vol);
  CHECK(calls > 0);
  CHECK(last == std::filesystem::file_size(golden));
  CHECK(vol->format == "qcow2");
  CHECK(vol->capacity == 64u << 20);
  CHECK(vol->path == dir + "/golden.qcow2");
  auto cmp = run_process({"qemu-img", "compare", "-f", "qcow2", "-F", "raw", vol->path, raw});
  REQUIRE(cmp);
  INFO(cmp->output);
  CHECK(cmp->ok());

  auto overlay = create_overlay_volume(*c, "vt-pool", "web-01.qcow2", *vol);
  REQUIRE(overlay);
  auto info = qemu_img_info(overlay->path);
  CHECK(info["format"] == "qcow2");
  CHECK(info["backing-filename"] == vol->path);
  CHECK(info["backing-filename-format"] == "qcow2");
  CHECK(info["virtual-size"] == 64u << 20);
  auto same = run_process({"qemu-img", "compare", overlay->path, raw});
  REQUIRE(same);
  CHECK(same->ok());

  // The name is taken: refused, and the existing volume untouched.
  CHECK(upload_volume(*c, "vt-pool", "golden.qcow2", golden).error().code() == Errc::failed_precondition);
  CHECK(std::filesystem::exists(vol->path));

  REQUIRE(delete_volume(*c, "vt-pool", "web-01.qcow2"));
  REQUIRE(delete_volume(*c, "vt-pool", "golden.qcow2"));
  CHECK_FALSE(std::filesystem::exists(vol->path));
  CHECK(delete_volume(*c, "vt-pool", "golden.qcow2").error().code() == Errc::not_found);

  // Cancelled mid-way: no volume is left. A cancellation request is for good
  // (common/cancel.h), so this comes last: the runner gives each case its own process.
  request_cancel();
  auto cancelled = upload_volume(*c, "vt-pool", "cancelled.qcow2", golden);
  REQUIRE_FALSE(cancelled);
  CHECK(cancelled.error().code() == Errc::cancelled);
  CHECK(volume_info(*c, "vt-pool", "cancelled.qcow2").error().code() == Errc::not_found);
  CHECK_FALSE(std::filesystem::exists(dir + "/cancelled.qcow2"));
}

TEST_CASE("virt::Connection: a killed libvirtd turns into errors and not hangs", "[.libvirtd]") {
  auto c = connect();
  std::string lost_reason;
  std::mutex mutex;
  c->add_close_listener([&](const std::string& why) {
    std::lock_guard lock(mutex);
    lost_reason = why;
  });
  REQUIRE(c->list_domains());
  pid_t pid = static_cast<pid_t>(std::stol(env("UTSUSHI_TEST_LIBVIRTD_PID")));
  REQUIRE(::kill(pid, SIGKILL) == 0);
  auto t0 = steady_clock::now();
  // Every call fails: the first may still be the one that finds the socket closed.
  auto listed = c->list_domains();
  CHECK_FALSE(listed);
  auto defined = c->define(encode_domain(small_guest("vt-lost", "", "")).value());
  REQUIRE_FALSE(defined);
  CHECK(defined.error().code() == Errc::unavailable);
  CHECK_FALSE(ensure_dir_pool(*c, "vt-pool", env("UTSUSHI_TEST_POOL_DIR")));
  // The close callback runs on the event loop: awaited, not slept for.
  while (c->lost().empty() && steady_clock::now() - t0 < seconds(30)) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  CHECK_THAT(c->lost(), Contains("was lost"));
  {
    std::lock_guard lock(mutex);
    CHECK(lost_reason == c->lost());
  }
  CHECK(duration<double>(steady_clock::now() - t0).count() < 30.0);
  // A listener added afterwards hears of it at once.
  bool told = false;
  c->add_close_listener([&](const std::string&) { told = true; });
  CHECK(told);
}
