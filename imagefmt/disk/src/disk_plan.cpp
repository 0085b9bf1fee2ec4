#include "utsushi/disk/disk_plan.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "utsushi/common/log.h"

namespace utsushi::disk {

[[nodiscard]] Result<DiskPlan> plan_disk(imagefmt::BlockDevice& disk, const std::string& source) {
  DiskPlan plan;
  plan.source = source;
  plan.size = disk.size();
  plan.table = UTSUSHI_TRY_CTX(read_partition_table(disk), source);
  for (const std::string& w : plan.table.warnings) {
    UTSUSHI_LOG_WARN("{}: {}", source, w);
    plan.warnings.push_back(w);
  }
  plan.used.add(plan.table.metadata);
  if (plan.table.kind == TableKind::none) {
    Volume v(disk, 0, disk.size(), "disk");
    plan.volumes.push_back(UTSUSHI_TRY_CTX(map_volume(v), source));
  }
  for (const Partition& p : plan.table.partitions) {
    Volume v(disk, p.offset, p.length, fmt::format("p{}", p.number));
    VolumeMap m = UTSUSHI_TRY_CTX(map_volume(v), source);
    plan.volumes.push_back(std::move(m));
  }
  for (VolumeMap& m : plan.volumes) {
    plan.used.add(m.used);
    if (m.full_copy && m.filesystem != "unknown") {
      plan.warnings.push_back(m.name + " (" + m.filesystem + "): " + m.note + "; copied in full");
    }
    for (const VolumeMap& c : m.children) {
      if (c.full_copy && c.filesystem != "unknown") {
        plan.warnings.push_back(c.name + " (" + c.filesystem + "): " + c.note + "; copied in full");
      }
    }
  }
  (void)plan.used.ranges();
  return plan;
}

namespace {

nlohmann::json volume_json(const VolumeMap& m) {
  nlohmann::json j = {{"name", m.name},
                      {"filesystem", m.filesystem},
                      {"offset", m.disk_offset},
                      {"size", m.size},
                      {"copied-bytes", m.used.total()},
                      {"fs-used-bytes", m.full_copy ? m.used.total() : m.fs_used_bytes},
                      {"full-copy", m.full_copy}};
  if (!m.label.empty()) {
    j["label"] = m.label;
  }
  if (!m.uuid.empty()) {
    j["uuid"] = m.uuid;
  }
  if (!m.note.empty()) {
    j["note"] = m.note;
  }
  if (!m.children.empty()) {
    j["volumes"] = nlohmann::json::array();
    for (const VolumeMap& c : m.children) {
      j["volumes"].push_back(volume_json(c));
    }
  }
  return j;
}

}  // namespace

nlohmann::json plan_to_json(const DiskPlan& plan) {
  nlohmann::json parts = nlohmann::json::array();
  for (const Partition& p : plan.table.partitions) {
    parts.push_back({{"number", p.number}, {"offset", p.offset}, {"size", p.length}, {"type", p.type},
                     {"name", p.name}, {"bootable", p.bootable}});
  }
  nlohmann::json vols = nlohmann::json::array();
  for (const VolumeMap& m : plan.volumes) {
    vols.push_back(volume_json(m));
  }
  return {{"source", plan.source},
          {"size", plan.size},
          {"partition-table", {{"type", std::string(table_kind_name(plan.table.kind))},
                               {"id", plan.table.disk_id},
                               {"sector-size", plan.table.sector_size},
                               {"boot-code", plan.table.has_boot_code},
                               {"partitions", parts}}},
          {"volumes", vols},
          {"copied-bytes", plan.used_bytes()},
          {"warnings", plan.warnings}};
}

}  // namespace utsushi::disk
