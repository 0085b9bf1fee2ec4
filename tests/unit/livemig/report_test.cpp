// report.h: ReportStatus names are the --json "status" strings users and
// tests parse; to_string and parse_report_status are each other's inverse.
#include "utsushi/livemig/report.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "session_fixtures.h"  // Catch::StringMaker<ReportStatus>

using namespace utsushi;
using namespace utsushi::livemig;

namespace {

// Every enumerator with the name it has always had on the wire.
const std::pair<ReportStatus, const char*> k_names[] = {
    {ReportStatus::ok, "ok"},           {ReportStatus::failed, "failed"},   {ReportStatus::refused, "refused"},
    {ReportStatus::cancelled, "cancelled"}, {ReportStatus::timeout, "timeout"}, {ReportStatus::unknown, "unknown"},
    {ReportStatus::skipped, "skipped"},
};

}  // namespace

TEST_CASE("livemig ReportStatus: each status has its fixed name and parses back", "[livemig][report]") {
  std::set<std::string> seen;
  for (auto [status, name] : k_names) {
    INFO(name);
    CHECK(to_string(status) == name);
    auto back = parse_report_status(name);
    REQUIRE(back);
    CHECK(*back == status);
    seen.insert(std::string(to_string(status)));
  }
  CHECK(seen.size() == std::size(k_names));  // no two statuses share a name
  CHECK_FALSE(parse_report_status(""));
  CHECK_FALSE(parse_report_status("OK"));
  CHECK_FALSE(parse_report_status("partial"));  // the CLI's summary word, not a migration's status
}

TEST_CASE("livemig report_json: \"status\" is the status's name, text output names it too", "[livemig][report]") {
  for (auto [status, name] : k_names) {
    Report r;
    r.status = status;
    INFO(name);
    auto j = report_json(r);
    CHECK(j.at("status") == name);
    CHECK(parse_report_status(j.at("status").get<std::string>()) == status);
    CHECK(report_text(r).starts_with(std::string("status: ") + name + "\n"));
  }
  CHECK(report_json(Report{}).at("status") == "failed");  // a report starts as failed
}

TEST_CASE("livemig status_for: not_supported refuses, anything else fails", "[livemig][report]") {
  CHECK(status_for(Error(Errc::not_supported, "QEMU 8.0")) == ReportStatus::refused);
  CHECK(status_for(Error(Errc::failed_precondition, "busy")) == ReportStatus::failed);
  CHECK(status_for(Error(Errc::unavailable, "link")) == ReportStatus::failed);
}

TEST_CASE("livemig report: --copy-storage adds per-disk and per-pass figures, none without it",
          "[livemig][report]") {
  Report r;
  CHECK_FALSE(report_json(r).contains("disks"));
  CHECK(report_text(r).find("disk pass") == std::string::npos);
  r.disks = {{"disk0", "/vm/d.qcow2", 3u << 30, 800u << 20, 740u << 20, 60u << 20, 1u << 20, 7u << 20, 50u << 20, 15,
              "ab"}};
  r.disk_phases = {{.phase = "bulk", .data_bytes = 58u << 20, .zero_bytes = 1u << 20, .copied_bytes = 7u << 20,
                    .wire_bytes = 48u << 20, .ms = 2500},
                   {.phase = "follow", .data_bytes = 9u << 20, .wire_bytes = 5u << 20, .ms = 900, .passes = 12},
                   {.phase = "final", .data_bytes = 2u << 20, .wire_bytes = 2u << 20, .ms = 140}};
  auto j = report_json(r);
  REQUIRE(j["disks"].size() == 1);
  CHECK(j["disks"][0]["allocated_bytes"] == 800u << 20);
  CHECK(j["disks"][0]["backing_bytes"] == 740u << 20);
  CHECK(j["disks"][0]["data_bytes"] == 60u << 20);
  CHECK(j["disks"][0]["zero_bytes"] == 1u << 20);
  CHECK(j["disks"][0]["copied_bytes"] == 7u << 20);
  CHECK(j["disks"][0]["wire_bytes"] == 50u << 20);
  CHECK(j["disks"][0]["hash"] == "ab");
  CHECK(j["disks"][0]["file"] == "/vm/d.qcow2");
  REQUIRE(j["disk_phases"].size() == 3);
  CHECK(j["disk_phases"][0]["passes"] == 1);
  CHECK(j["disk_phases"][0]["copied_bytes"] == 7u << 20);
  CHECK(j["disk_phases"][0]["wire_bytes"] == 48u << 20);
  CHECK(j["disk_phases"][1]["passes"] == 12);
  CHECK(j["disk_phases"][2]["phase"] == "final");
  CHECK(j["disk_phases"][2]["ms"] == 140);
  std::string text = report_text(r);
  CHECK(text.find("disk0") != std::string::npos);
  CHECK(text.find("disk pass follow x12") != std::string::npos);
  CHECK(text.find("disk pass final") != std::string::npos);
  CHECK(j["first_pass_held_ms"] == 0);
  CHECK(text.find("first memory pass held") == std::string::npos);
  r.first_pass_held_ms = 670;
  CHECK(report_json(r)["first_pass_held_ms"] == 670);
  CHECK(report_text(r).find("QEMU's first memory pass held for the disks: 670 ms") != std::string::npos);
}
