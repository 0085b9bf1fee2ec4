// The JSON reports of v2p plan and v2p restore.
#include <nlohmann/json.hpp>

#include "utsushi/v2p/restore.h"

namespace utsushi::v2p {

nlohmann::json layout_to_json(const LayoutPlan& l) {
  nlohmann::json parts = nlohmann::json::array();
  for (const PartitionMove& m : l.partitions) {
    parts.push_back({{"number", m.number},
                     {"filesystem", m.filesystem},
                     {"label", m.label},
                     {"uuid", m.uuid},
                     {"source", {{"offset", m.src_offset}, {"size", m.src_length}}},
                     {"target", {{"offset", m.dst_offset}, {"size", m.dst_length}}},
                     {"minimum-size", m.min_length},
                     {"action", std::string(fs_action_name(m.action))}});
  }
  nlohmann::json j = {{"partition-table", std::string(disk::table_kind_name(l.target.kind))},
                      {"source-size", l.source_size},
                      {"target-size", l.target_size},
                      {"minimum-target-size", l.minimum_target_size},
                      {"partitions", parts},
                      {"notes", l.notes}};
  j["resized-partition"] = l.resized ? nlohmann::json(*l.resized) : nlohmann::json(nullptr);
  return j;
}

namespace {

nlohmann::json fs_changes_json(const std::vector<FsChange>& changes) {
  nlohmann::json out = nlohmann::json::array();
  for (const FsChange& c : changes) {
    out.push_back({{"partition", c.partition},
                   {"filesystem", c.filesystem},
                   {"action", std::string(fs_action_name(c.action))},
                   {"old-size", c.old_size},
                   {"new-size", c.new_size},
                   {"detail", c.detail}});
  }
  return out;
}

}  // namespace

nlohmann::json to_json(const RestoreResult& r) {
  nlohmann::json j = {{"image", r.image},
                      {"target", r.target},
                      {"resumed", r.resumed},
                      {"image-used-bytes", r.image_plan.used_bytes()},
                      {"bytes-written", r.stats.bytes_written},
                      {"bytes-zeroed", r.stats.bytes_zeroed},
                      {"bytes-discarded", r.stats.bytes_discarded},
                      {"windows-resumed", r.stats.windows_resumed},
                      {"layout", layout_to_json(r.layout)},
                      {"filesystems", fs_changes_json(r.filesystems)},
                      {"seconds", r.seconds}};
  if (r.stats.verified_bytes > 0) {
    j["verified-bytes"] = r.stats.verified_bytes;
  }
  j["boot"] = r.preparation ? guest::to_json(*r.preparation) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json to_json(const PlanResult& r) {
  nlohmann::json j = {{"image", r.image},
                      {"target", r.target},
                      {"fits", true},
                      {"image-used-bytes", r.image_plan.used_bytes()},
                      {"target-partition-table", r.existing_table},
                      {"layout", layout_to_json(r.layout)}};
  j["boot"] = r.preparation ? guest::to_json(*r.preparation) : nlohmann::json(nullptr);
  return j;
}

}  // namespace utsushi::v2p
