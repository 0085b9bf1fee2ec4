// disk_exports.h against a scripted monitor (fake_monitor.h): the QMP
// commands and arguments of the NBD server, the exports and the dirty-bitmap
// passes, and what a tracker cleans up when QEMU refuses a step. The same
// calls against a real QEMU are proven by e2e.livemig.disk_copy.
#include "utsushi/livemig/disk_exports.h"

#include <catch2/catch.hpp>
#include <set>

#include "fake_monitor.h"

using namespace utsushi;
using namespace utsushi::livemig;
using namespace utsushi::livemig::test;
using nlohmann::json;
using namespace std::chrono;

namespace {

// A monitor whose exports come and go as QEMU's do: block-export-add lists
// the id, block-export-del removes it.
struct ExportingMonitor {
  FakeMonitor m;
  std::set<std::string> exports;

  ExportingMonitor() {
    m.on("block-dirty-bitmap-add", Reply::ok());
    m.on("block-dirty-bitmap-remove", Reply::ok());
    m.on("transaction", Reply::ok());
    m.on("block-export-add", Reply::from([this](const json& a, int) -> Result<json> {
           exports.insert(a["id"].get<std::string>());
           return json::object();
         }));
    m.on("block-export-del", Reply::from([this](const json& a, int) -> Result<json> {
           exports.erase(a["id"].get<std::string>());
           return json::object();
         }));
    m.on("query-block-exports", Reply::from([this](const json&, int) -> Result<json> {
           json list = json::array();
           for (const auto& id : exports) {
             list.push_back({{"id", id}, {"node-name", "disk0"}, {"type", "nbd"}, {"shutting-down", false}});
           }
           return list;
         }));
  }

  std::vector<MonitorCall> calls_of(const std::string& command) const {
    std::vector<MonitorCall> out;
    for (auto& c : m.calls()) {
      if (c.command == command) {
        out.push_back(c);
      }
    }
    return out;
  }
};

}  // namespace

TEST_CASE("livemig start_nbd_server / export_disk: the QMP arguments QEMU 7.2 takes", "[livemig][disk_exports][fake]") {
  FakeMonitor m;
  m.on("nbd-server-start", Reply::ok());
  m.on("block-export-add", Reply::ok());
  REQUIRE(start_nbd_server(m, "/run/x/nbd.sock"));
  REQUIRE(export_disk(m, {"dst-disk0", "disk0", Access::writable, false, std::nullopt}));
  auto calls = m.calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].arguments == json{{"addr", {{"type", "unix"}, {"data", {{"path", "/run/x/nbd.sock"}}}}}});
  CHECK(calls[1].arguments ==
        json{{"type", "nbd"}, {"id", "dst-disk0"}, {"node-name", "disk0"}, {"name", "dst-disk0"}, {"writable", true}});
}

TEST_CASE("livemig DirtyTracker: pass 0 exports the allocation, each pass a stopped bitmap",
          "[livemig][disk_exports][fake]") {
  ExportingMonitor e;
  auto t = DirtyTracker::start(e.m, "disk0", "lm-vda");
  REQUIRE(t);
  CHECK(t->current().pass == 0);
  CHECK(t->current().name == "lm-vda-p0");
  CHECK_FALSE(t->current().bitmap);
  CHECK(e.m.commands() == std::vector<std::string>{"block-dirty-bitmap-add", "block-export-add"});
  CHECK(e.m.calls()[0].arguments == json{{"node", "disk0"}, {"name", "lm-vda-b1"}});
  CHECK(e.m.calls()[1].arguments == json{{"type", "nbd"},
                                         {"id", "lm-vda-p0"},
                                         {"node-name", "disk0"},
                                         {"name", "lm-vda-p0"},
                                         {"writable", false},
                                         {"allocation-depth", true}});

  auto p1 = t->next_pass();
  REQUIRE(p1);
  CHECK(p1->pass == 1);
  CHECK(p1->name == "lm-vda-p1");
  CHECK(p1->bitmap == "lm-vda-b1");
  auto tx = e.calls_of("transaction");
  REQUIRE(tx.size() == 1);
  CHECK(tx[0].arguments["actions"] ==
        json::array({{{"type", "block-dirty-bitmap-add"}, {"data", {{"node", "disk0"}, {"name", "lm-vda-b2"}}}},
                     {{"type", "block-dirty-bitmap-disable"}, {"data", {{"node", "disk0"}, {"name", "lm-vda-b1"}}}}}));
  CHECK(e.calls_of("block-export-add").back().arguments["bitmaps"] == json::array({"lm-vda-b1"}));
  CHECK(e.exports == std::set<std::string>{"lm-vda-p1"});

  auto p2 = t->next_pass();
  REQUIRE(p2);
  CHECK(p2->bitmap == "lm-vda-b2");
  CHECK(e.exports == std::set<std::string>{"lm-vda-p2"});
  // Bitmap 1 went once its export had gone.
  auto removed = e.calls_of("block-dirty-bitmap-remove");
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].arguments == json{{"node", "disk0"}, {"name", "lm-vda-b1"}});

  REQUIRE(t->stop());
  CHECK(e.exports.empty());
  std::set<std::string> gone;
  for (const auto& c : e.calls_of("block-dirty-bitmap-remove")) {
    gone.insert(c.arguments["name"].get<std::string>());
  }
  CHECK(gone == std::set<std::string>{"lm-vda-b1", "lm-vda-b2", "lm-vda-b3"});
  CHECK(e.m.unscripted().empty());
}

TEST_CASE("livemig DirtyTracker: a refused step leaves nothing behind after stop()",
          "[livemig][disk_exports][fake]") {
  SECTION("the first export refused: the bitmap is removed at once") {
    ExportingMonitor e;
    e.m.once("block-export-add", Reply::qmp_error("NBD server not running"));
    auto t = DirtyTracker::start(e.m, "disk0", "lm");
    REQUIRE_FALSE(t);
    CHECK(t.error().code() == Errc::failed_precondition);
    CHECK(t.error().message().find("exporting node disk0 as lm-p0") != std::string::npos);
    CHECK(e.calls_of("block-dirty-bitmap-remove").size() == 1);
  }
  SECTION("the transaction refused: stop() removes the export and the recording bitmap") {
    ExportingMonitor e;
    auto t = DirtyTracker::start(e.m, "disk0", "lm");
    REQUIRE(t);
    e.m.once("transaction", Reply::qmp_error("Bitmap already exists: lm-b2"));
    auto p = t->next_pass();
    REQUIRE_FALSE(p);
    CHECK(p.error().message().find("switching dirty bitmaps") != std::string::npos);
    REQUIRE(t->stop());
    CHECK(e.exports.empty());
    auto removed = e.calls_of("block-dirty-bitmap-remove");
    REQUIRE(removed.size() == 1);
    CHECK(removed[0].arguments["name"] == "lm-b1");
  }
  SECTION("the monitor gone: stop() tries every step and reports the first error") {
    ExportingMonitor e;
    auto t = DirtyTracker::start(e.m, "disk0", "lm");
    REQUIRE(t);
    e.m.vanish();
    auto r = t->stop();
    REQUIRE_FALSE(r);
    CHECK(monitor_gone(r.error()));
    CHECK(e.m.count("block-dirty-bitmap-remove") == 1);
  }
}

TEST_CASE("livemig remove_export: waits until QEMU no longer lists it, or gives up", "[livemig][disk_exports][fake]") {
  FakeMonitor m;
  m.on("block-export-del", Reply::ok());
  json listed = json::array({{{"id", "x"}, {"shutting-down", true}}});
  SECTION("deleted after two polls") {
    m.once("query-block-exports", Reply::ok(listed));
    m.once("query-block-exports", Reply::ok(listed));
    m.on("query-block-exports", Reply::ok(json::array()));
    REQUIRE(remove_export(m, "x"));
    CHECK(m.count("query-block-exports") == 3);
  }
  SECTION("a client keeps it: unavailable after the timeout") {
    m.on("query-block-exports", Reply::ok(listed));
    auto r = remove_export(m, "x", milliseconds(50));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::unavailable);
    CHECK(r.error().message().find("still listed") != std::string::npos);
  }
}
