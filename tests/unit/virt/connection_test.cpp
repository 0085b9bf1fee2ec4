#include "utsushi/virt/connection.h"

#include <catch2/catch.hpp>

#include "result_printer.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "utsushi/virt/domain_spec.h"

using namespace utsushi;
using namespace utsushi::virt;
using namespace std::chrono;
using Catch::Matchers::Contains;

// libvirt's test driver runs in process (no daemon): its state lives as long
// as a connection to it is open. The private-daemon tests (storage, a lost
// libvirtd) are in tests/e2e/virt.

namespace {

DomainSpec guest(const std::string& name, const std::string& uuid, const std::string& mac) {
  DomainSpec s;
  s.type = VirtType::qemu;
  s.name = name;
  s.uuid = uuid;
  s.memory_bytes = 64ull << 20;
  s.disks = {{"/srv/" + name + ".qcow2", DiskSourceKind::file, "qcow2", DiskBus::virtio, "", 1, false, ""}};
  s.nics = {{NicKind::network, "default", NicModel::virtio, mac, std::nullopt}};
  s.metadata = Metadata{"clone", {{"n", name}}};
  return s;
}

const DomainInfo* find(const std::vector<DomainInfo>& all, const std::string& name) {
  auto it = std::find_if(all.begin(), all.end(), [&](const DomainInfo& d) { return d.name == name; });
  return it == all.end() ? nullptr : &*it;
}

constexpr const char* k_uuid_a = "11111111-2222-4333-8444-555555555555";
constexpr const char* k_uuid_b = "66666666-7777-4888-8999-aaaaaaaaaaaa";

}  // namespace

TEST_CASE("virt::Connection defines, refuses duplicates and replaces on request", "[virt][connection]") {
  auto conn = Connection::open("test:///default");
  REQUIRE(conn);
  Connection& c = **conn;
  CHECK(c.driver() == "TEST");
  std::string a = encode_domain(guest("web-a", k_uuid_a, "52:54:00:00:00:0a")).value();
  REQUIRE(c.define(a).value() == "web-a");

  SECTION("the same name is refused") {
    auto dup = c.define(encode_domain(guest("web-a", k_uuid_b, "52:54:00:00:00:0b")).value());
    REQUIRE_FALSE(dup);
    CHECK(dup.error().code() == Errc::failed_precondition);
    CHECK_THAT(dup.error().message(), Contains("named web-a already exists"));
  }
  SECTION("the same UUID under another name is refused") {
    auto dup = c.define(encode_domain(guest("web-b", k_uuid_a, "52:54:00:00:00:0b")).value());
    REQUIRE_FALSE(dup);
    CHECK(dup.error().code() == Errc::failed_precondition);
    CHECK_THAT(dup.error().message(), Contains(k_uuid_a));
    CHECK_THAT(dup.error().message(), Contains("(web-a)"));
  }
  SECTION("Replace::yes destroys and undefines the old one first, even a running one") {
    REQUIRE(c.start("web-a"));
    auto spec = guest("web-a", k_uuid_b, "52:54:00:00:00:0b");
    spec.vcpus = 2;
    REQUIRE(c.define(encode_domain(spec).value(), Replace::yes).value() == "web-a");
    auto info = c.info("web-a");
    REQUIRE(info);
    CHECK(info->uuid == k_uuid_b);
    CHECK_FALSE(info->active);
    CHECK(decode_domain(c.xml("web-a").value()).value().vcpus == 2);
    // A domain holding the new definition's UUID under another name goes too.
    REQUIRE(c.define(encode_domain(guest("web-c", k_uuid_a, "52:54:00:00:00:0c")).value()));
    REQUIRE(c.define(encode_domain(guest("web-d", k_uuid_a, "52:54:00:00:00:0d")).value(), Replace::yes));
    CHECK_FALSE(c.exists("web-c").value());
    REQUIRE(c.undefine("web-d"));
  }
  SECTION("a malformed definition is refused before libvirt sees it") {
    auto bad = c.define("<domain type='qemu'>");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code() == Errc::invalid_argument);
  }
  (void)c.destroy("web-a");
  (void)c.undefine("web-a");
}

TEST_CASE("virt::Connection lists domains with their state and utsushi metadata", "[virt][connection]") {
  auto conn = Connection::open("test:///default");
  REQUIRE(conn);
  Connection& c = **conn;
  REQUIRE(c.define(encode_domain(guest("mine", k_uuid_a, "52:54:00:00:00:01")).value()));
  REQUIRE(c.start("mine"));  // the test driver cannot start paused: see libvirtd_test.cpp
  auto all = c.list_domains();
  REQUIRE(all);
  const DomainInfo* mine = find(*all, "mine");
  const DomainInfo* preset = find(*all, "test");  // the test driver's own running domain
  REQUIRE(mine);
  REQUIRE(preset);
  CHECK(mine->uuid == k_uuid_a);
  CHECK(mine->state == DomainState::running);
  CHECK(mine->active);
  CHECK(mine->persistent);
  CHECK(mine->metadata == Metadata{"clone", {{"n", "mine"}}});
  CHECK_FALSE(preset->metadata);
  CHECK(std::is_sorted(all->begin(), all->end(), [](auto& x, auto& y) { return x.name < y.name; }));

  REQUIRE(c.set_autostart("mine", true));
  REQUIRE(c.destroy("mine"));
  CHECK(c.info("mine").value().state == DomainState::shut_off);
  REQUIRE(c.destroy("mine"));  // not running: nothing to do
  REQUIRE(c.undefine("mine"));
  CHECK(c.lookup("mine").error().code() == Errc::not_found);
  REQUIRE(c.destroy("mine"));  // absent: nothing to do
  CHECK(c.undefine("mine").error().code() == Errc::not_found);
}

TEST_CASE("virt::Connection reports the MACs in use by every domain", "[virt][connection]") {
  auto conn = Connection::open("test:///default");
  REQUIRE(conn);
  Connection& c = **conn;
  auto a = guest("mac-a", k_uuid_a, "52:54:00:AA:00:01");
  a.nics.push_back({NicKind::bridge, "br0", NicModel::e1000, "52:54:00:aa:00:02", std::nullopt});
  REQUIRE(c.define(encode_domain(a).value()));
  auto b = guest("mac-b", k_uuid_b, "52:54:00:bb:00:01");
  REQUIRE(c.define(encode_domain(b).value()));
  auto macs = c.macs_in_use();
  REQUIRE(macs);
  for (const char* m : {"52:54:00:aa:00:01", "52:54:00:aa:00:02", "52:54:00:bb:00:01"}) {
    CHECK(macs->contains(m));
  }
  REQUIRE(c.undefine("mac-b"));
  CHECK_FALSE(c.macs_in_use().value().contains("52:54:00:bb:00:01"));
  REQUIRE(c.undefine("mac-a"));
}

TEST_CASE("virt::Connection refuses a bad URI and check_absent names the conflict", "[virt][connection]") {
  auto bad = Connection::open("nosuchdriver:///x");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Errc::unavailable);
  auto conn = Connection::open("test:///default");
  REQUIRE(conn);
  CHECK((*conn)->check_absent("nobody", k_uuid_a));
  auto taken = (*conn)->check_absent("test", "");
  REQUIRE_FALSE(taken);
  CHECK(taken.error().code() == Errc::failed_precondition);
}

TEST_CASE("virt::Connection opens and closes its event loop again and again", "[virt][connection]") {
  auto t0 = steady_clock::now();
  // Connections opened and closed from two threads at once: a loop that is
  // stopping and the next one must never run side by side, and stopping one
  // must not wait for its timer's tick each time.
  std::vector<std::thread> threads;
  std::vector<int> failures(2, 0);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&failures, t] {
      for (int i = 0; i < 25; ++i) {
        auto c = Connection::open("test:///default");
        if (!c || !(*c)->list_domains()) {
          ++failures[t];
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(failures == std::vector<int>{0, 0});
  CHECK(duration<double>(steady_clock::now() - t0).count() < 10.0);
}
