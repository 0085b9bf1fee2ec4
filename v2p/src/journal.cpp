#include "utsushi/v2p/journal.h"

#include <fmt/core.h>
#include <xxhash.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "utsushi/common/atomic_file.h"
#include "utsushi/common/fd.h"
#include "utsushi/common/log.h"

namespace utsushi::v2p {
namespace {

namespace fs = std::filesystem;
constexpr int k_version = 1;

}  // namespace

std::string digest(std::string_view text) { return fmt::format("{:016x}", XXH3_64bits(text.data(), text.size())); }

Result<Journal> Journal::open(const std::string& dir, const std::string& target_identity, const std::string& key) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return fail(Errc::io_error, fmt::format("cannot create the state directory '{}': {}", dir, ec.message()));
  }
  Journal j((fs::path(dir) / ("target-" + digest(target_identity) + ".json")).string(), key);
  std::ifstream in(j.m_path);
  if (!in) {
    return j;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto doc = nlohmann::json::parse(text.str(), nullptr, false);
  if (doc.is_discarded() || doc.value("version", 0) != k_version || doc.value("key", "") != key) {
    UTSUSHI_LOG_INFO("{}: a journal of another restore onto this target: starting over", j.m_path);
    for (const auto& f : doc.is_object() ? doc.value("work-files", nlohmann::json::array()) : nlohmann::json::array()) {
      fs::remove(f.get<std::string>(), ec);
    }
    fs::remove(j.m_path, ec);
    return j;
  }
  j.m_resumed = true;
  for (const auto& w : doc.value("windows", nlohmann::json::array())) {
    j.m_windows.insert(w.get<std::size_t>());
  }
  for (const auto& s : doc.value("steps", nlohmann::json::array())) {
    j.m_steps.insert(s.get<std::string>());
  }
  for (const auto& f : doc.value("work-files", nlohmann::json::array())) {
    j.m_work_files.insert(f.get<std::string>());
  }
  return j;
}

Result<void> Journal::save() {
  nlohmann::json doc = {{"version", k_version}, {"key", m_key}, {"windows", m_windows}, {"steps", m_steps},
                        {"work-files", m_work_files}};
  auto file = UTSUSHI_TRY(AtomicFile::create(m_path));
  std::string text = doc.dump();
  UTSUSHI_TRY(write_full(file.fd(), std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
                         m_path));
  return file.commit();
}

Result<void> Journal::mark_window(std::size_t index) {
  m_windows.insert(index);
  return save();
}

Result<void> Journal::mark_step(std::string_view step) {
  m_steps.insert(std::string(step));
  return save();
}

std::string Journal::work_path(std::string_view suffix) {
  std::string p = fs::path(m_path).replace_extension().string() + "." + std::string(suffix);
  m_work_files.insert(p);
  return p;
}

Result<void> Journal::finish() {
  std::error_code ec;
  for (const std::string& f : m_work_files) {
    fs::remove(f, ec);
  }
  fs::remove(m_path, ec);
  if (ec) {
    return fail(Errc::io_error, fmt::format("cannot remove the journal '{}': {}", m_path, ec.message()));
  }
  return {};
}

}  // namespace utsushi::v2p
