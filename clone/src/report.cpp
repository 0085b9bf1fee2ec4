#include "utsushi/clone/report.h"

namespace utsushi::clone {

nlohmann::json summary_json(const guest::Report& report) {
  nlohmann::json ops = nlohmann::json::array();
  for (const guest::OperationReport& op : report.operations) {
    nlohmann::json changes = nlohmann::json::array();
    for (const guest::Change& c : op.changes) {
      changes.push_back({{"kind", guest::change_kind_name(c.kind)}, {"target", c.target}, {"detail", c.detail}});
    }
    nlohmann::json j = {{"name", op.name}, {"status", guest::operation_status_name(op.status)}, {"changes", changes}};
    if (!op.reason.empty()) {
      j["reason"] = op.reason;
    }
    ops.push_back(std::move(j));
  }
  return {{"dry-run", report.dry_run}, {"operations", ops}};
}

nlohmann::json to_json(const CloneRecord& c) {
  nlohmann::json j = {{"name", c.name},         {"uri", c.uri},         {"uuid", c.uuid},
                      {"macs", c.macs},         {"hostname", c.hostname}, {"address", c.address},
                      {"machine-id", c.machine_id}, {"ssh-host-keys", c.host_keys}, {"disks", c.disks},
                      {"state", c.state},       {"started", c.started}};
  j["mac"] = c.macs.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.macs.front());
  if (c.customisation) {
    j["customisation"] = summary_json(*c.customisation);
  }
  return j;
}

nlohmann::json to_json(const CreateReport& r) {
  nlohmann::json clones = nlohmann::json::array();
  for (const CloneRecord& c : r.clones) {
    clones.push_back(to_json(c));
  }
  return {{"golden", r.golden}, {"clones", clones}, {"seconds", r.seconds}};
}

nlohmann::json to_json(const DestroyReport& r) {
  nlohmann::json clones = nlohmann::json::array();
  for (const DestroyedClone& c : r.clones) {
    clones.push_back({{"name", c.name}, {"uri", c.uri}, {"volumes", c.volumes}});
  }
  return {{"clones", clones}, {"golden-volumes", r.golden_volumes}, {"left-alone", r.left_alone}};
}

nlohmann::json to_json(const SysprepResult& r) {
  return {{"image", r.image},
          {"machine-id", r.machine_id},
          {"ssh-host-keys", r.host_keys},
          {"customisation", summary_json(r.report)}};
}

}  // namespace utsushi::clone
