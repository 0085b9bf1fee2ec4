#include "utsushi/guest/operation.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>

#include "utsushi/common/cancel.h"
#include "utsushi/common/log.h"
#include "utsushi/guest/device_names.h"

namespace utsushi::guest {
namespace {

std::string parent_dir(const std::string& path) {
  std::size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t\n'\"\\$`*?[]{}()<>|&;!#~") == std::string::npos) {
    return s;
  }
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out.append("'\\''");
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

std::string tail(const std::string& s, std::size_t max) {
  return s.size() <= max ? s : fmt::format("...{}", std::string_view(s).substr(s.size() - max));
}

}  // namespace

Target::Target(Session& session, const GuestOs& os, Mode mode) : m_session(session), m_os(os), m_mode(mode) {}
Target::~Target() = default;

Result<const DeviceMap*> Target::devices() {
  if (!m_devices) {
    m_devices = std::make_unique<DeviceMap>(UTSUSHI_TRY(DeviceMap::scan(m_session)));
  }
  return m_devices.get();
}

Result<bool> Target::exists(const std::string& path) {
  if (auto it = m_planned.find(path); it != m_planned.end()) {
    return it->second.has_value();
  }
  return m_session.exists(path);
}

Result<std::optional<std::string>> Target::read(const std::string& path) {
  if (auto it = m_planned.find(path); it != m_planned.end()) {
    return it->second;
  }
  return m_session.read_file_if_exists(path);
}

Result<bool> Target::write(const std::string& path, const std::string& content, std::string detail) {
  std::optional<std::string> before = UTSUSHI_TRY(read(path));
  if (before == content) {
    return false;
  }
  if (applying()) {
    UTSUSHI_TRY(m_session.write_file(path, content));
  } else {
    m_planned[path] = content;
  }
  Change c;
  c.kind = ChangeKind::file;
  c.target = path;
  if (before) {
    c.before = summarise_content(*before);
  }
  c.after = summarise_content(content);
  c.detail = std::move(detail);
  record(std::move(c));
  return true;
}

Result<bool> Target::remove(const std::string& path, std::string detail) {
  bool planned = m_planned.contains(path);
  if (!UTSUSHI_TRY(exists(path)) && (planned || !UTSUSHI_TRY(m_session.is_symlink(path)))) {
    return false;
  }
  Change c;
  c.kind = ChangeKind::file;
  c.target = path;
  if (!planned && UTSUSHI_TRY(m_session.is_symlink(path))) {
    c.before = fmt::format("<symlink to {}>", UTSUSHI_TRY(m_session.readlink(path)));
  } else if (auto content = UTSUSHI_TRY(read(path))) {
    c.before = summarise_content(*content);
  }
  c.detail = std::move(detail);
  if (applying()) {
    UTSUSHI_TRY(m_session.remove(path));
  } else {
    m_planned[path] = std::nullopt;
  }
  record(std::move(c));
  return true;
}

Result<void> Target::copy(const std::string& from, const std::string& to, std::string detail) {
  Change c;
  c.kind = ChangeKind::file;
  c.target = to;
  if (auto before = UTSUSHI_TRY(read(to))) {
    c.before = summarise_content(*before);
  }
  c.after = fmt::format("<copy of {}>", from);
  c.detail = std::move(detail);
  if (applying()) {
    UTSUSHI_TRY(m_session.mkdir_p(parent_dir(to)));
    UTSUSHI_TRY(m_session.copy_file(from, to));
  } else {
    m_planned[to] = fmt::format("<copy of {}>", from);
  }
  record(std::move(c));
  return {};
}

Result<bool> Target::symlink(const std::string& target, const std::string& link, std::string detail) {
  bool is_link = !m_planned.contains(link) && UTSUSHI_TRY(m_session.is_symlink(link));
  if (is_link && UTSUSHI_TRY(m_session.readlink(link)) == target) {
    return false;
  }
  Change c;
  c.kind = ChangeKind::file;
  c.target = link;
  if (is_link) {
    c.before = fmt::format("<symlink to {}>", UTSUSHI_TRY(m_session.readlink(link)));
  } else if (auto before = UTSUSHI_TRY(read(link))) {
    c.before = summarise_content(*before);
  }
  c.after = fmt::format("<symlink to {}>", target);
  c.detail = std::move(detail);
  if (applying()) {
    UTSUSHI_TRY(m_session.mkdir_p(parent_dir(link)));
    UTSUSHI_TRY(m_session.symlink(target, link));
  } else {
    m_planned[link] = fmt::format("<symlink to {}>", target);
  }
  record(std::move(c));
  return true;
}

Result<std::optional<CommandResult>> Target::run(const std::vector<std::string>& argv, std::string detail) {
  Change c;
  c.kind = ChangeKind::command;
  for (const std::string& a : argv) {
    if (!c.target.empty()) {
      c.target.push_back(' ');
    }
    c.target.append(shell_quote(a));
  }
  c.detail = std::move(detail);
  std::optional<CommandResult> result;
  if (applying()) {
    result = UTSUSHI_TRY(m_session.run(argv));
    c.exit_code = result->exit_code;
    c.output = tail(result->output, 4096);
  }
  record(std::move(c));
  return result;
}

void Target::note(std::string target, std::string detail) {
  UTSUSHI_LOG_WARN("{}: {}", target, detail);
  Change c;
  c.kind = ChangeKind::note;
  c.target = std::move(target);
  c.detail = std::move(detail);
  record(std::move(c));
}

void Target::check(std::string target, std::string detail) {
  Change c;
  c.kind = ChangeKind::check;
  c.target = std::move(target);
  c.detail = std::move(detail);
  record(std::move(c));
}

void Target::service(std::string unit, std::string detail) {
  Change c;
  c.kind = ChangeKind::service;
  c.target = std::move(unit);
  c.detail = std::move(detail);
  record(std::move(c));
}

void Target::record(Change change) {
  if (change.kind == ChangeKind::file) {
    m_files_changed.insert(change.target);
  }
  m_changes.push_back(std::move(change));
}

bool Target::changed_files_under(std::span<const std::string_view> prefixes) const {
  return std::any_of(m_files_changed.begin(), m_files_changed.end(), [&](const std::string& path) {
    return std::any_of(prefixes.begin(), prefixes.end(), [&](std::string_view p) { return path.starts_with(p); });
  });
}

std::vector<Change> Target::take_changes() { return std::exchange(m_changes, {}); }

std::vector<const Operation*> default_operations(const OperationList& all) {
  std::vector<const Operation*> out;
  for (const auto& op : all) {
    if (op->enabled_by_default()) {
      out.push_back(op.get());
    }
  }
  return out;
}

Result<std::vector<const Operation*>> select_operations(const OperationList& all, std::string_view spec) {
  if (spec.empty()) {
    return default_operations(all);
  }
  std::vector<const Operation*> chosen;
  auto find = [&](std::string_view name) -> const Operation* {
    for (const auto& op : all) {
      if (op->name() == name) {
        return op.get();
      }
    }
    return nullptr;
  };
  auto add = [&](const Operation* op) {
    if (std::find(chosen.begin(), chosen.end(), op) == chosen.end()) {
      chosen.push_back(op);
    }
  };
  std::size_t start = 0;
  while (start <= spec.size()) {
    std::size_t comma = spec.find(',', start);
    std::string_view item = spec.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? spec.size() + 1 : comma + 1;
    if (item.empty()) {
      continue;
    }
    if (item == "defaults" || item == "all") {
      for (const auto& op : all) {
        if (item == "all" || op->enabled_by_default()) {
          add(op.get());
        }
      }
      continue;
    }
    bool remove = item.front() == '-';
    std::string_view name = remove ? item.substr(1) : item;
    const Operation* op = find(name);
    if (op == nullptr) {
      std::string known;
      for (const auto& o : all) {
        known.append(known.empty() ? "" : ", ").append(o->name());
      }
      return fail(Errc::invalid_argument, fmt::format("unknown operation '{}' (known: {})", name, known));
    }
    if (remove) {
      std::erase(chosen, op);
    } else {
      add(op);
    }
  }
  // Keep the table's order: operations depend on running in it.
  std::vector<const Operation*> ordered;
  for (const auto& op : all) {
    if (std::find(chosen.begin(), chosen.end(), op.get()) != chosen.end()) {
      ordered.push_back(op.get());
    }
  }
  return ordered;
}

std::string list_operations(const OperationList& all) {
  std::size_t width = 0;
  for (const auto& op : all) {
    width = std::max(width, op->name().size());
  }
  std::string out;
  for (const auto& op : all) {
    out += fmt::format("{:<{}} {} {}\n", op->name(), width, op->enabled_by_default() ? "*" : " ", op->description());
  }
  return out;
}

Report run_operations(Session& session, const GuestOs& os, std::span<const Operation* const> operations, Mode mode,
                      const OperationStarted& started) {
  Report report;
  report.dry_run = mode == Mode::plan;
  Target target(session, os, mode);
  for (const Operation* op : operations) {
    OperationReport rep;
    rep.name = std::string(op->name());
    if (auto c = check_cancelled(); !c) {
      rep.status = OperationStatus::failed;
      rep.reason = c.error().message();
      report.error = std::move(c).error();
      report.operations.push_back(std::move(rep));
      break;
    }
    Applicability a = op->applies(os);
    if (!a.applies) {
      rep.status = OperationStatus::skipped;
      rep.reason = std::move(a.reason);
      report.operations.push_back(std::move(rep));
      continue;
    }
    UTSUSHI_LOG_INFO("{} {}: {}", mode == Mode::plan ? "planning" : "running", op->name(), op->description());
    if (started) {
      started(*op);
    }
    const auto t0 = std::chrono::steady_clock::now();
    Result<void> r = op->run(target);
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rep.changes = target.take_changes();
    if (!r) {
      rep.status = OperationStatus::failed;
      rep.reason = r.error().message();
      report.error = std::move(r).error().with_context(op->name());
      report.operations.push_back(std::move(rep));
      break;
    }
    bool changed = std::any_of(rep.changes.begin(), rep.changes.end(),
                               [](const Change& c) { return c.kind != ChangeKind::note && c.kind != ChangeKind::check; });
    rep.status = !changed ? OperationStatus::unchanged
                 : mode == Mode::plan ? OperationStatus::planned
                                      : OperationStatus::applied;
    report.operations.push_back(std::move(rep));
  }
  return report;
}

}  // namespace utsushi::guest
