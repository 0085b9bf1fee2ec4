#include "utsushi/livemig/disk_exports.h"

#include <fmt/core.h>

#include <algorithm>
#include <thread>

namespace utsushi::livemig {

using nlohmann::json;
using namespace std::chrono;

Result<void> start_nbd_server(Monitor& qmp, const std::string& socket) {
  // nbd-server-start takes the legacy socket address: {type, data: {...}}.
  json addr = {{"type", "unix"}, {"data", {{"path", socket}}}};
  UTSUSHI_TRY_CTX(qmp.execute("nbd-server-start", {{"addr", addr}}), "starting QEMU's NBD server on " + socket);
  return {};
}

Result<void> stop_nbd_server(Monitor& qmp) {
  UTSUSHI_TRY_CTX(qmp.execute("nbd-server-stop"), "stopping QEMU's NBD server");
  return {};
}

Result<void> export_disk(Monitor& qmp, const ExportSpec& s) {
  json args = {{"type", "nbd"},
               {"id", s.id},
               {"node-name", s.node},
               {"name", s.id},
               {"writable", s.access == Access::writable}};
  if (s.allocation_depth) {
    args["allocation-depth"] = true;
  }
  if (s.bitmap) {
    args["bitmaps"] = json::array({*s.bitmap});
  }
  UTSUSHI_TRY_CTX(qmp.execute("block-export-add", args), fmt::format("exporting node {} as {}", s.node, s.id));
  return {};
}

namespace {

Result<bool> export_listed(Monitor& qmp, const std::string& id) {
  auto list = UTSUSHI_TRY(qmp.execute("query-block-exports"));
  if (!list.is_array()) {
    return fail(Errc::corruption, "query-block-exports: not a list");
  }
  return std::any_of(list.begin(), list.end(), [&](const json& e) { return e.value("id", "") == id; });
}

}  // namespace

Result<void> remove_export(Monitor& qmp, const std::string& id, milliseconds timeout) {
  std::string what = "removing block export " + id;
  UTSUSHI_TRY_CTX(qmp.execute("block-export-del", {{"id", id}}), what);
  auto deadline = steady_clock::now() + timeout;
  while (UTSUSHI_TRY_CTX(export_listed(qmp, id), what)) {
    if (steady_clock::now() >= deadline) {
      return fail(Errc::unavailable, fmt::format("{}: still listed after {} ms (a client connected?)", what,
                                                 timeout.count()));
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return {};
}

Result<DirtyTracker> DirtyTracker::start(Monitor& qmp, std::string node, std::string tag) {
  DirtyTracker t(qmp, std::move(node), std::move(tag));
  std::string b1 = t.bitmap_name(1);
  UTSUSHI_TRY_CTX(qmp.execute("block-dirty-bitmap-add", {{"node", t.m_node}, {"name", b1}}),
                  fmt::format("adding dirty bitmap {} to node {}", b1, t.m_node));
  t.m_bitmaps.push_back(b1);
  t.m_current = {0, t.export_name(0), std::nullopt};
  auto r = export_disk(qmp, {t.m_current.name, t.m_node, Access::read_only, true, std::nullopt});
  if (!r) {
    (void)t.stop();
    return std::unexpected(std::move(r).error());
  }
  t.m_exported = true;
  return t;
}

Result<PassExport> DirtyTracker::next_pass() {
  if (m_exported) {
    UTSUSHI_TRY(remove_export(*m_qmp, m_current.name));
    m_exported = false;
  }
  if (m_current.bitmap) {
    UTSUSHI_TRY_CTX(m_qmp->execute("block-dirty-bitmap-remove", {{"node", m_node}, {"name", *m_current.bitmap}}),
                    "removing dirty bitmap " + *m_current.bitmap);
    std::erase(m_bitmaps, *m_current.bitmap);
  }
  unsigned n = m_current.pass + 1;
  std::string stopped = bitmap_name(n);
  std::string recording = bitmap_name(n + 1);
  json actions = json::array({
      {{"type", "block-dirty-bitmap-add"}, {"data", {{"node", m_node}, {"name", recording}}}},
      {{"type", "block-dirty-bitmap-disable"}, {"data", {{"node", m_node}, {"name", stopped}}}},
  });
  UTSUSHI_TRY_CTX(m_qmp->execute("transaction", {{"actions", actions}}),
                  fmt::format("pass {} of node {}: switching dirty bitmaps", n, m_node));
  m_bitmaps.push_back(recording);
  m_current = {n, export_name(n), stopped};
  UTSUSHI_TRY(export_disk(*m_qmp, {m_current.name, m_node, Access::read_only, true, stopped}));
  m_exported = true;
  return m_current;
}

Result<void> DirtyTracker::stop() {
  Result<void> first;
  auto keep = [&](Result<void> r) {
    if (!r && first) {
      first = std::move(r);
    }
  };
  if (m_exported) {
    keep(remove_export(*m_qmp, m_current.name));
    m_exported = false;
  }
  for (const auto& b : m_bitmaps) {
    auto r = m_qmp->execute("block-dirty-bitmap-remove", {{"node", m_node}, {"name", b}});
    keep(r ? Result<void>() : std::unexpected(std::move(r).error().with_context("removing dirty bitmap " + b)));
  }
  m_bitmaps.clear();
  return first;
}

}  // namespace utsushi::livemig
