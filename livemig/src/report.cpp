#include "utsushi/livemig/report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "utsushi/common/progress.h"
#include "utsushi/livemig/frame.h"

namespace utsushi::livemig {

namespace {

struct StatusName {
  ReportStatus status;
  std::string_view name;
};
// The one table of status names (the --json "status" strings).
constexpr StatusName k_status_names[] = {
    {ReportStatus::ok, "ok"},           {ReportStatus::failed, "failed"},   {ReportStatus::refused, "refused"},
    {ReportStatus::cancelled, "cancelled"}, {ReportStatus::timeout, "timeout"}, {ReportStatus::unknown, "unknown"},
    {ReportStatus::skipped, "skipped"},
};

}  // namespace

std::string_view to_string(ReportStatus s) {
  for (const auto& n : k_status_names) {
    if (n.status == s) {
      return n.name;
    }
  }
  return "failed";  // unreachable: every enumerator is in the table (report_test.cpp)
}

std::optional<ReportStatus> parse_report_status(std::string_view name) {
  for (const auto& n : k_status_names) {
    if (n.name == name) {
      return n.status;
    }
  }
  return std::nullopt;
}

ReportStatus status_for(const Error& e) {
  return e.code() == Errc::not_supported ? ReportStatus::refused : ReportStatus::failed;
}

nlohmann::json report_json(const Report& r) {
  nlohmann::json kinds = nlohmann::json::object();
  for (std::size_t k = 0; k < k_page_kinds; ++k) {
    const auto& c = r.kinds[k];
    kinds[std::string(page_kind_name(k))] = {{"records", c.records},
                                             {"bytes_from_qemu", c.qemu_bytes},
                                             {"token_bytes", c.token_bytes},
                                             {"token_header_bytes", c.header_bytes},
                                             {"bytes_on_wire", static_cast<std::uint64_t>(std::llround(c.wire_bytes))}};
  }
  nlohmann::json j = {{"type", "result"},
                      {"status", to_string(r.status)},
                      {"bytes_from_qemu", r.bytes_from_qemu},
                      {"bytes_on_wire", r.bytes_on_wire},
                      {"bytes_to_qemu", r.bytes_to_qemu},
                      {"frames", r.frames},
                      {"rounds", r.rounds},
                      {"sections", r.sections},
                      {"total_ms", r.total_ms},
                      {"downtime_ms", r.downtime_ms},
                      {"qemu_downtime_ms", r.qemu_downtime_ms},
                      {"downtime_limit_ms", r.downtime_limit_ms},
                      {"policy_steps", r.policy_steps},
                      {"converged", r.converged},
                      {"held", r.held},
                      {"source_state", r.source_state},
                      {"qemu_version", r.qemu_version},
                      {"kinds", kinds}};
  if (!r.stream_hash.empty()) {
    j["stream_hash"] = r.stream_hash;
  }
  if (!r.dest_stream_hash.empty()) {
    j["dest_stream_hash"] = r.dest_stream_hash;
  }
  if (r.data_frames > 0) {
    std::uint64_t frames = r.frames + r.frames_received;
    std::uint64_t headers = frames * k_frame_header;
    std::uint64_t token_headers = 0;
    for (const auto& c : r.kinds) {
      token_headers += c.header_bytes;
    }
    nlohmann::json levels = nlohmann::json::object();
    for (std::size_t l = 0; l < r.level_bytes.size(); ++l) {
      if (r.level_bytes[l] > 0) {
        levels[std::to_string(l)] = r.level_bytes[l];
      }
    }
    j["zstd_levels"] = levels;
    j["overhead"] = {{"frames", frames},
                     {"frame_header_bytes", headers},
                     {"data_frames", r.data_frames},
                     {"data_payload_bytes", r.data_payload_bytes},
                     {"control_payload_bytes", r.bytes_on_wire - std::min(r.bytes_on_wire, headers + r.data_payload_bytes)},
                     {"token_header_bytes_raw", token_headers},
                     {"link_busy_ms", r.link_busy_ms},
                     {"qemu_wait_ms", r.qemu_wait_ms},
                     {"flow_wait_ms", r.flow_wait_ms}};
  }
  if (!r.disks.empty()) {
    nlohmann::json disks = nlohmann::json::array();
    for (const auto& d : r.disks) {
      disks.push_back({{"node", d.node},
                       {"file", d.file},
                       {"size", d.size},
                       {"allocated_bytes", d.allocated_bytes},
                       {"backing_bytes", d.backing_bytes},
                       {"data_bytes", d.data_bytes},
                       {"zero_bytes", d.zero_bytes},
                       {"copied_bytes", d.copied_bytes},
                       {"wire_bytes", d.wire_bytes},
                       {"batches", d.batches},
                       {"hash", d.hash}});
    }
    j["disks"] = disks;
    nlohmann::json phases = nlohmann::json::array();
    for (const auto& p : r.disk_phases) {
      phases.push_back({{"phase", p.phase},
                        {"passes", p.passes},
                        {"data_bytes", p.data_bytes},
                        {"zero_bytes", p.zero_bytes},
                        {"copied_bytes", p.copied_bytes},
                        {"wire_bytes", p.wire_bytes},
                        {"ms", p.ms}});
    }
    j["disk_phases"] = phases;
    if (!r.disk_phases.empty()) {
      j["first_pass_held_ms"] = r.first_pass_held_ms;
    }
  }
  if (!r.source_qmp.empty()) {
    j["source_qmp"] = r.source_qmp;
  }
  if (!r.error.empty()) {
    j["error"] = r.error;
  }
  return j;
}

namespace {

// A time in ms, or "-" when it was not measured (a migration that never started).
std::string ms_text(std::int64_t ms) { return ms < 0 ? "-" : fmt::format("{} ms", ms); }

}  // namespace

std::string report_text(const Report& r) {
  std::string s = fmt::format(
      "status: {}\nrounds (dirty syncs): {}\nbytes from QEMU: {} ({})\nbytes on the link: {} ({}, {:.1f}x smaller)\n"
      "total time: {}\ndowntime (source STOP to destination RESUME): {} (QEMU's own figure: {})\n"
      "source guest: {}\nstream hash (XXH3-64): {}\n",
      to_string(r.status), r.rounds, r.bytes_from_qemu, format_bytes(r.bytes_from_qemu), r.bytes_on_wire,
      format_bytes(r.bytes_on_wire),
      r.bytes_on_wire ? static_cast<double>(r.bytes_from_qemu) / static_cast<double>(r.bytes_on_wire) : 0.0,
      ms_text(r.total_ms), ms_text(r.downtime_ms), ms_text(r.qemu_downtime_ms), r.source_state.empty() ? "?" : r.source_state,
      r.stream_hash.empty() ? "-" : r.stream_hash);
  if (r.held) {
    s += "destination: held paused after loading (commit handshake)\n";
  }
  s += "page kind   records   from QEMU   on the link\n";
  for (std::size_t k = 0; k < k_page_kinds; ++k) {
    const auto& c = r.kinds[k];
    s += fmt::format("{:<8} {:>10} {:>11} {:>13}\n", page_kind_name(k), c.records, format_bytes(c.qemu_bytes),
                     format_bytes(static_cast<std::uint64_t>(std::llround(c.wire_bytes))));
  }
  if (!r.disks.empty()) {
    s += "disk       allocated   in backing   data sent   as references   zeros   on the link\n";
    for (const auto& d : r.disks) {
      s += fmt::format("{:<10} {:>9} {:>12} {:>11} {:>15} {:>7} {:>13}\n", d.node, format_bytes(d.allocated_bytes),
                       format_bytes(d.backing_bytes), format_bytes(d.data_bytes), format_bytes(d.copied_bytes),
                       format_bytes(d.zero_bytes), format_bytes(d.wire_bytes));
    }
    for (const auto& p : r.disk_phases) {
      std::string name = p.passes > 1 ? fmt::format("{} x{}", p.phase, p.passes) : p.phase;
      s += fmt::format("disk pass {:<10} {:>11} data ({} as references), {:>9} zeros, {:>11} on the link, {}\n",
                       name, format_bytes(p.data_bytes), format_bytes(p.copied_bytes), format_bytes(p.zero_bytes),
                       format_bytes(p.wire_bytes), ms_text(p.ms));
    }
    if (r.first_pass_held_ms > 0) {
      s += fmt::format("QEMU's first memory pass held for the disks: {}\n", ms_text(r.first_pass_held_ms));
    }
  }
  if (!r.error.empty()) {
    s += "error: " + r.error + "\n";
  }
  return s;
}

}  // namespace utsushi::livemig
