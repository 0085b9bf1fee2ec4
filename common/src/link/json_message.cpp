#include "utsushi/common/link/json_message.h"

#include <fmt/core.h>

namespace utsushi::link {

Error JsonMessage::bad(std::string_view key, std::string_view want) const {
  return Error(Errc::corruption, fmt::format("{}: field '{}' is missing or not {}", m_what, key, want));
}

Result<std::string> JsonMessage::string(std::string_view key) const {
  auto it = m_json.find(key);
  if (it == m_json.end() || !it->is_string()) {
    return std::unexpected(bad(key, "a string"));
  }
  return it->get_ref<const std::string&>();
}

Result<std::uint64_t> JsonMessage::u64(std::string_view key) const {
  auto it = m_json.find(key);
  if (it == m_json.end() || !it->is_number_unsigned()) {
    return std::unexpected(bad(key, "an unsigned integer"));
  }
  return it->get<std::uint64_t>();
}

Result<bool> JsonMessage::boolean(std::string_view key) const {
  auto it = m_json.find(key);
  if (it == m_json.end() || !it->is_boolean()) {
    return std::unexpected(bad(key, "true or false"));
  }
  return it->get<bool>();
}

Result<std::vector<std::uint64_t>> JsonMessage::u64_array(std::string_view key, std::size_t max_items) const {
  auto it = m_json.find(key);
  if (it == m_json.end() || !it->is_array() || it->size() > max_items) {
    return std::unexpected(bad(key, fmt::format("an array of at most {} unsigned integers", max_items)));
  }
  std::vector<std::uint64_t> out;
  out.reserve(it->size());
  for (const auto& v : *it) {
    if (!v.is_number_unsigned()) {
      return std::unexpected(bad(key, "an array of unsigned integers"));
    }
    out.push_back(v.get<std::uint64_t>());
  }
  return out;
}

Result<std::string> JsonMessage::string_or(std::string_view key, std::string fallback) const {
  return has(key) ? string(key) : Result<std::string>(std::move(fallback));
}

Result<std::uint64_t> JsonMessage::u64_or(std::string_view key, std::uint64_t fallback) const {
  return has(key) ? u64(key) : Result<std::uint64_t>(fallback);
}

Result<bool> JsonMessage::boolean_or(std::string_view key, bool fallback) const {
  return has(key) ? boolean(key) : Result<bool>(fallback);
}

std::vector<std::uint8_t> json_payload(const nlohmann::json& j) {
  std::string s = j.dump();
  return std::vector<std::uint8_t>(s.begin(), s.end());
}

Result<JsonMessage> parse_json_object(std::span<const std::uint8_t> payload, std::string_view what) {
  auto j = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(Errc::corruption, fmt::format("{}: not a JSON object", what));
  }
  return JsonMessage(std::move(j), what);
}

}  // namespace utsushi::link
