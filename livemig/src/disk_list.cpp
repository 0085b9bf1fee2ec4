// The disk list frame of a --copy-storage session (disk_session.h): what the
// sender announces of each disk, and its strict checks on the receiver.
#include <fmt/core.h>

#include <algorithm>
#include <array>

#include "utsushi/livemig/disk_session.h"

namespace utsushi::livemig {

using nlohmann::json;

namespace {

constexpr std::array<const char*, 9> k_fields = {"node", "qdev", "size", "file", "format", "backing",
                                                 "backing_format", "backing_hash", "allocated"};

Error bad(std::size_t i, std::string_view why) {
  return Error(Errc::corruption, fmt::format("livemig: disk {} of the sender's disk list: {}", i, why));
}

bool printable(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// A string field of at most `max` bytes without control characters.
Result<std::string> text_field(const json& d, const char* key, std::size_t max, std::size_t i) {
  const json& v = d[key];
  if (!v.is_string()) {
    return std::unexpected(bad(i, fmt::format("'{}' is not a string", key)));
  }
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() > max || !printable(s)) {
    return std::unexpected(bad(i, fmt::format("'{}' is longer than {} bytes or holds a control character", key, max)));
  }
  return s;
}

bool is_hash(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool is_format(std::string_view s) { return s == "qcow2" || s == "raw"; }

// Checks the fields' relations once each has its type.
Result<void> check_disk(const SessionDisk& d, std::size_t i) {
  if (d.node.empty()) {
    return std::unexpected(bad(i, "no node name"));
  }
  if (d.size == 0 || d.size % 512 != 0 || d.size > k_max_session_disk_size) {
    return std::unexpected(bad(i, fmt::format("virtual size {} is 0, not a multiple of 512 or above {}", d.size,
                                              k_max_session_disk_size)));
  }
  if (d.allocated > k_max_session_disk_size) {
    return std::unexpected(bad(i, fmt::format("allocated size {} is above {}", d.allocated, k_max_session_disk_size)));
  }
  if (!d.file.starts_with('/') || !is_format(d.format)) {
    return std::unexpected(bad(i, "its file is not an absolute path or its format is not qcow2 or raw"));
  }
  bool none = d.backing.empty() && d.backing_format.empty() && d.backing_hash.empty();
  bool all = d.backing.starts_with('/') && is_format(d.backing_format) && is_hash(d.backing_hash);
  if (!none && !all) {
    return std::unexpected(bad(i, "its backing file, format and hash are not all given (an absolute path, qcow2 "
                                  "or raw, 32 hex digits) nor all empty"));
  }
  return {};
}

Result<SessionDisk> parse_disk(const json& d, std::size_t i) {
  if (!d.is_object() || d.size() != k_fields.size() ||
      !std::all_of(k_fields.begin(), k_fields.end(), [&](const char* k) { return d.contains(k); })) {
    return std::unexpected(bad(i, "not an object of exactly the fields node, qdev, size, file, format, backing, "
                                  "backing_format, backing_hash, allocated"));
  }
  if (!d["size"].is_number_unsigned() || !d["allocated"].is_number_unsigned()) {
    return std::unexpected(bad(i, "its size or allocated size is not an unsigned integer"));
  }
  SessionDisk out;
  out.node = UTSUSHI_TRY(text_field(d, "node", k_max_disk_name, i));
  out.qdev = UTSUSHI_TRY(text_field(d, "qdev", k_max_disk_name, i));
  out.size = d["size"].get<std::uint64_t>();
  out.file = UTSUSHI_TRY(text_field(d, "file", k_max_disk_path, i));
  out.format = UTSUSHI_TRY(text_field(d, "format", 8, i));
  out.backing = UTSUSHI_TRY(text_field(d, "backing", k_max_disk_path, i));
  out.backing_format = UTSUSHI_TRY(text_field(d, "backing_format", 8, i));
  out.backing_hash = UTSUSHI_TRY(text_field(d, "backing_hash", 32, i));
  out.allocated = d["allocated"].get<std::uint64_t>();
  UTSUSHI_TRY(check_disk(out, i));
  return out;
}

}  // namespace

std::string disks_frame_text(const std::vector<SessionDisk>& disks) {
  json list = json::array();
  for (const auto& d : disks) {
    list.push_back({{"node", d.node},
                    {"qdev", d.qdev},
                    {"size", d.size},
                    {"file", d.file},
                    {"format", d.format},
                    {"backing", d.backing},
                    {"backing_format", d.backing_format},
                    {"backing_hash", d.backing_hash},
                    {"allocated", d.allocated}});
  }
  return list.dump();
}

Result<std::vector<SessionDisk>> parse_disk_list(std::string_view text, EmptyList empty) {
  json list = json::parse(text, nullptr, false);
  if (!list.is_array() || list.size() > k_max_session_disks || (list.empty() && empty == EmptyList::refused)) {
    return fail(Errc::corruption, "livemig: the sender's disk list is not a list of disks");
  }
  std::vector<SessionDisk> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    out.push_back(UTSUSHI_TRY(parse_disk(list[i], i)));
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (out[i].node == out[j].node || out[i].file == out[j].file) {
        return std::unexpected(bad(i, "the same node or file as disk " + std::to_string(j)));
      }
    }
  }
  return out;
}

}  // namespace utsushi::livemig
