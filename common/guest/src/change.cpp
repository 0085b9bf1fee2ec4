#include "utsushi/guest/change.h"

#include <fmt/core.h>

#include <algorithm>

namespace utsushi::guest {

std::string_view change_kind_name(ChangeKind k) noexcept {
  switch (k) {
    case ChangeKind::file: return "file";
    case ChangeKind::command: return "command";
    case ChangeKind::service: return "service";
    case ChangeKind::check: return "check";
    case ChangeKind::note: return "note";
  }
  return "note";
}

std::string_view operation_status_name(OperationStatus s) noexcept {
  switch (s) {
    case OperationStatus::applied: return "applied";
    case OperationStatus::planned: return "planned";
    case OperationStatus::unchanged: return "unchanged";
    case OperationStatus::skipped: return "skipped";
    case OperationStatus::failed: return "failed";
  }
  return "failed";
}

std::size_t Report::change_count() const noexcept {
  std::size_t n = 0;
  for (const OperationReport& op : operations) {
    n += op.changes.size();
  }
  return n;
}

std::string summarise_content(std::string_view content) {
  constexpr std::size_t k_max_text = 64 * 1024;
  bool text = content.size() <= k_max_text && std::none_of(content.begin(), content.end(), [](char c) {
                auto u = static_cast<unsigned char>(c);
                return u == 0 || (u < 0x20 && c != '\n' && c != '\t' && c != '\r');
              });
  return text ? std::string(content) : fmt::format("<{} bytes>", content.size());
}

nlohmann::json to_json(const Change& c) {
  nlohmann::json j = {{"kind", std::string(change_kind_name(c.kind))}};
  switch (c.kind) {
    case ChangeKind::file:
      j["path"] = c.target;
      j["before"] = c.before ? nlohmann::json(*c.before) : nlohmann::json(nullptr);
      j["after"] = c.after ? nlohmann::json(*c.after) : nlohmann::json(nullptr);
      break;
    case ChangeKind::command:
      j["command"] = c.target;
      j["exit-code"] = c.exit_code ? nlohmann::json(*c.exit_code) : nlohmann::json(nullptr);
      j["output"] = c.output;
      break;
    case ChangeKind::service:
      j["unit"] = c.target;
      break;
    case ChangeKind::check:
    case ChangeKind::note:
      j["subject"] = c.target;
      break;
  }
  j["detail"] = c.detail;
  return j;
}

nlohmann::json to_json(const Report& report) {
  nlohmann::json ops = nlohmann::json::array();
  for (const OperationReport& op : report.operations) {
    nlohmann::json changes = nlohmann::json::array();
    for (const Change& c : op.changes) {
      changes.push_back(to_json(c));
    }
    nlohmann::json o = {{"name", op.name},
                        {"status", std::string(operation_status_name(op.status))},
                        {"changes", changes}};
    if (!op.reason.empty()) {
      o["reason"] = op.reason;
    }
    ops.push_back(std::move(o));
  }
  nlohmann::json j = {{"dry-run", report.dry_run}, {"operations", ops}};
  if (report.error) {
    j["error"] = {{"code", std::string(errc_name(report.error->code()))}, {"message", report.error->message()}};
  }
  return j;
}

}  // namespace utsushi::guest
