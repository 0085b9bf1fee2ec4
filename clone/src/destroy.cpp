#include "utsushi/clone/destroy.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

#include "plan.h"
#include "utsushi/clone/naming.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/log.h"

namespace utsushi::clone {
namespace {

using namespace detail;

bool is_pattern(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

bool made_by_clone(const virt::DomainInfo& d) { return d.metadata && d.metadata->tool == k_tool; }

std::string value_of(const virt::DomainInfo& d, const std::string& key) {
  auto it = d.metadata->values.find(key);
  return it == d.metadata->values.end() ? std::string() : it->second;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    std::string l = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!l.empty()) {
      out.push_back(l);
    }
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

// Deletes a volume if it is there; its path when it was.
Result<std::optional<std::string>> delete_volume_if_present(virt::Connection& conn, const std::string& pool,
                                                            const std::string& name) {
  auto info = virt::volume_info(conn, pool, name);
  if (!info) {
    if (info.error().code() == Errc::not_found) {
      return std::nullopt;
    }
    return std::unexpected(std::move(info).error());
  }
  UTSUSHI_TRY(virt::delete_volume(conn, pool, name));
  return info->path;
}

struct Target {
  std::size_t host;
  virt::DomainInfo domain;
};

}  // namespace

Result<DestroyReport> destroy_clones(const DestroyOptions& o,
                                     const std::function<void(const std::string&, const std::string&)>& on_clone) {
  if (o.patterns.empty()) {
    return fail(Errc::invalid_argument, "no clone named (NAME or PATTERN)");
  }
  std::vector<std::shared_ptr<virt::Connection>> conns;
  std::vector<std::vector<virt::DomainInfo>> domains;
  for (const std::string& uri : o.uris) {
    conns.push_back(UTSUSHI_TRY(virt::Connection::open(uri)));
    domains.push_back(UTSUSHI_TRY(conns.back()->list_domains()));
  }
  DestroyReport report;
  std::vector<Target> targets;
  std::set<std::pair<std::size_t, std::string>> chosen;
  for (const std::string& p : o.patterns) {
    bool matched = false;
    for (std::size_t h = 0; h < conns.size(); ++h) {
      for (const virt::DomainInfo& d : domains[h]) {
        if (!matches(p, d.name)) {
          continue;
        }
        matched = true;
        if (!made_by_clone(d)) {
          if (!is_pattern(p)) {
            return fail(Errc::failed_precondition,
                        fmt::format("the domain {} on {} was not made by clone: refusing to destroy it", d.name,
                                    conns[h]->uri()));
          }
          report.left_alone.push_back(fmt::format("{}: {}", conns[h]->uri(), d.name));
          continue;
        }
        if (chosen.insert({h, d.name}).second) {
          targets.push_back({h, d});
        }
      }
    }
    if (!matched) {
      UTSUSHI_LOG_WARN("no domain matches {}", p);
    }
  }
  if (targets.empty()) {
    return fail(Errc::not_found, fmt::format("no clone matches {}", fmt::join(o.patterns, " ")));
  }
  std::set<std::tuple<std::size_t, std::string, std::string>> goldens;  // host, pool, volume
  for (const Target& t : targets) {
    UTSUSHI_TRY(check_cancelled());
    virt::Connection& conn = *conns[t.host];
    DestroyedClone dc;
    dc.name = t.domain.name;
    dc.uri = conn.uri();
    std::string pool = value_of(t.domain, k_pool);
    for (const std::string& v : lines(value_of(t.domain, k_golden_volumes))) {
      goldens.insert({t.host, pool, v});
    }
    if (!o.dry_run) {
      UTSUSHI_TRY_CTX(conn.destroy(dc.name), dc.name);
    }
    for (const std::string& v : lines(value_of(t.domain, k_volumes))) {
      if (o.dry_run) {
        dc.volumes.push_back(v);
      } else if (auto path = UTSUSHI_TRY_CTX(delete_volume_if_present(conn, pool, v), dc.name)) {
        dc.volumes.push_back(*path);
      }
    }
    if (!o.dry_run) {
      auto r = conn.undefine(dc.name, virt::Nvram::remove);
      if (!r && r.error().code() != Errc::not_found) {
        return std::unexpected(std::move(r).error().with_context(dc.name));
      }
    }
    if (on_clone) {
      on_clone(dc.name, o.dry_run ? "would be destroyed" : "destroyed");
    }
    report.clones.push_back(std::move(dc));
  }
  // Golden volumes no clone on their host uses any more.
  for (const auto& [h, pool, volume] : goldens) {
    bool used = false;
    for (const virt::DomainInfo& d : UTSUSHI_TRY(conns[h]->list_domains())) {
      if (made_by_clone(d) && !chosen.contains({h, d.name})) {
        auto names = lines(value_of(d, k_golden_volumes));
        used = used || std::find(names.begin(), names.end(), volume) != names.end();
      }
    }
    if (used || o.dry_run) {
      continue;
    }
    if (auto path = UTSUSHI_TRY(delete_volume_if_present(*conns[h], pool, volume))) {
      report.golden_volumes.push_back(fmt::format("{}: {}", conns[h]->uri(), *path));
    }
    UTSUSHI_TRY(delete_volume_if_present(*conns[h], pool, golden_marker(volume)));
  }
  return report;
}

}  // namespace utsushi::clone
