#pragma once
// Typed decoding of JSON message payloads without exceptions: a peer's
// malformed or hostile message becomes an Errc::corruption Result naming the
// message and the field, never a nlohmann::json exception.
//
//   auto j = UTSUSHI_TRY(parse_json_object(frame.payload, "p2v RESULT"));
//   auto status = UTSUSHI_TRY(j.string("status"));
//   auto resend = UTSUSHI_TRY(j.u64_array("resend", chunk_count));

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "utsushi/common/error.h"

namespace utsushi::link {

class JsonMessage {
 public:
  JsonMessage(nlohmann::json j, std::string_view what) : m_json(std::move(j)), m_what(what) {}

  bool has(std::string_view key) const { return m_json.contains(key); }
  // A required field of the given type.
  [[nodiscard]] Result<std::string> string(std::string_view key) const;
  [[nodiscard]] Result<std::uint64_t> u64(std::string_view key) const;
  [[nodiscard]] Result<bool> boolean(std::string_view key) const;
  // An array of unsigned integers, at most `max_items` of them.
  [[nodiscard]] Result<std::vector<std::uint64_t>> u64_array(std::string_view key, std::size_t max_items) const;
  // Optional fields: `fallback` when absent, an error when of another type.
  [[nodiscard]] Result<std::string> string_or(std::string_view key, std::string fallback) const;
  [[nodiscard]] Result<std::uint64_t> u64_or(std::string_view key, std::uint64_t fallback) const;
  [[nodiscard]] Result<bool> boolean_or(std::string_view key, bool fallback) const;

  const nlohmann::json& json() const noexcept { return m_json; }

 private:
  Error bad(std::string_view key, std::string_view want) const;

  nlohmann::json m_json;
  std::string m_what;
};

// `j` serialised as a message payload (UTF-8 JSON).
[[nodiscard]] std::vector<std::uint8_t> json_payload(const nlohmann::json& j);

// Parses `payload` as one JSON object; corruption naming `what` otherwise.
[[nodiscard]] Result<JsonMessage> parse_json_object(std::span<const std::uint8_t> payload, std::string_view what);

}  // namespace utsushi::link
