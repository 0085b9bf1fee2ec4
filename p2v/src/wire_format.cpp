#include "utsushi/p2v/wire_format.h"

#include <xxhash.h>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "utsushi/common/link/json_message.h"

namespace utsushi::p2v::wire {

using link::json_payload;

Result<void> check_name(std::string_view name, std::string_view what) {
  if (name.empty() || name.size() > k_max_name) {
    return fail(Errc::invalid_argument, fmt::format("{}: a name of 1 to {} bytes is needed", what, k_max_name));
  }
  if (name.front() == '.') {
    return fail(Errc::invalid_argument, fmt::format("{} '{}' starts with '.'", what, name));
  }
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '/' || c == '\\') {
      return fail(Errc::invalid_argument,
                  fmt::format("{} holds a control character or a path separator (byte {:#04x})", what, u));
    }
  }
  return {};
}

Bytes encode_begin(const Begin& b) {
  return json_payload({{"client", b.client},
                     {"name", b.name},
                     {"size", b.size},
                     {"format", b.format},
                     {"compress", b.compress},
                     {"chunk_size", k_chunk_size},
                     {"chunks", b.chunks},
                     {"plan_id", b.plan_id}});
}

Result<Begin> decode_begin(std::span<const std::uint8_t> payload) {
  auto j = UTSUSHI_TRY(link::parse_json_object(payload, "p2v BEGIN"));
  Begin b;
  b.client = UTSUSHI_TRY(j.string("client"));
  b.name = UTSUSHI_TRY(j.string("name"));
  b.size = UTSUSHI_TRY(j.u64("size"));
  b.format = UTSUSHI_TRY(j.string("format"));
  b.compress = UTSUSHI_TRY(j.boolean_or("compress", false));
  b.chunks = UTSUSHI_TRY(j.u64("chunks"));
  b.plan_id = UTSUSHI_TRY(j.string("plan_id"));
  UTSUSHI_TRY(check_name(b.client, "the client name"));
  UTSUSHI_TRY(check_name(b.name, "the image name"));
  if (UTSUSHI_TRY(j.u64("chunk_size")) != k_chunk_size) {
    return fail(Errc::not_supported, "p2v BEGIN: another chunk size");
  }
  // Used ranges are whole sectors, so a disk of SIZE bytes has at most
  // SIZE/512 + 1 chunks.
  if (b.size > k_max_disk_size || b.chunks > b.size / 512 + 1 || b.chunks > k_max_chunks) {
    return fail(Errc::invalid_argument,
                fmt::format("p2v BEGIN: {} chunks for a disk of {} bytes is not a plan this server takes", b.chunks,
                            b.size));
  }
  if (b.plan_id.size() > 64) {
    return fail(Errc::corruption, "p2v BEGIN: plan_id too long");
  }
  return b;
}

Bytes encode_state(const std::vector<bool>& held) {
  Bytes s;
  s.reserve(8 + (held.size() + 7) / 8);
  put_le64(s, held.size());
  s.resize(8 + (held.size() + 7) / 8, 0);
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (held[i]) {
      s[8 + i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
    }
  }
  return s;
}

Result<std::vector<bool>> decode_state(std::span<const std::uint8_t> payload, std::uint64_t chunks) {
  Cursor c(payload, "p2v STATE");
  if (UTSUSHI_TRY(c.le64()) != chunks || c.remaining() != (chunks + 7) / 8) {
    return fail(Errc::corruption, "p2v STATE: not the plan that was sent");
  }
  std::vector<bool> held(chunks);
  for (std::uint64_t i = 0; i < chunks; ++i) {
    held[i] = (payload[8 + i / 8] >> (i % 8)) & 1;
  }
  return held;
}

void encode_chunk_header(Bytes& out, const ChunkHeader& h) {
  put_le64(out, h.index);
  put_le64(out, h.offset);
  put_le32(out, h.length);
  put_le64(out, h.hash);
}

Result<ChunkView> decode_chunk(std::span<const std::uint8_t> payload, std::uint64_t chunks, std::uint64_t disk_size) {
  Cursor c(payload, "p2v CHUNK");
  ChunkView v;
  v.header.index = UTSUSHI_TRY(c.le64());
  v.header.offset = UTSUSHI_TRY(c.le64());
  v.header.length = UTSUSHI_TRY(c.le32());
  v.header.hash = UTSUSHI_TRY(c.le64());
  const ChunkHeader& h = v.header;
  std::uint64_t end = 0;
  if (h.index >= chunks || h.length == 0 || h.length > k_chunk_size ||
      __builtin_add_overflow(h.offset, std::uint64_t{h.length}, &end) || end > disk_size) {
    return fail(Errc::corruption, "p2v CHUNK: out of the plan's range");
  }
  v.compressed = UTSUSHI_TRY(c.take(c.remaining()));
  return v;
}

Bytes encode_result(const Outcome& r) {
  static constexpr const char* k_names[] = {"ok", "resend", "error"};
  nlohmann::json j = {{"status", k_names[static_cast<int>(r.status)]}};
  if (r.status == Outcome::Status::resend) {
    j["resend"] = r.resend;
  }
  if (!r.path.empty()) {
    j["path"] = r.path;
  }
  if (!r.message.empty()) {
    j["message"] = r.message;
  }
  return json_payload(j);
}

Result<Outcome> decode_result(std::span<const std::uint8_t> payload, std::uint64_t chunks) {
  auto j = UTSUSHI_TRY(link::parse_json_object(payload, "p2v RESULT"));
  Outcome r;
  std::string status = UTSUSHI_TRY(j.string("status"));
  r.path = UTSUSHI_TRY(j.string_or("path", ""));
  r.message = UTSUSHI_TRY(j.string_or("message", ""));
  if (status == "ok") {
    r.status = Outcome::Status::ok;
  } else if (status == "resend") {
    r.status = Outcome::Status::resend;
    r.resend = UTSUSHI_TRY(j.u64_array("resend", chunks));
    for (std::uint64_t i : r.resend) {
      if (i >= chunks) {
        return fail(Errc::corruption, "p2v RESULT: resend index out of range");
      }
    }
  } else if (status == "error") {
    r.status = Outcome::Status::error;
  } else {
    return fail(Errc::corruption, "p2v RESULT: unknown status");
  }
  return r;
}

std::vector<ChunkRef> make_chunks(const disk::ByteRanges& used) {
  std::vector<ChunkRef> out;
  for (const disk::ByteRange& r : used.ranges()) {
    std::uint64_t off = r.offset;
    while (off < r.end()) {
      std::uint64_t boundary = (off / k_chunk_size + 1) * k_chunk_size;
      std::uint64_t end = std::min(r.end(), boundary);
      out.push_back({off, static_cast<std::uint32_t>(end - off)});
      off = end;
    }
  }
  return out;
}

std::uint64_t plan_id(std::uint64_t disk_size, const std::vector<ChunkRef>& chunks) {
  XXH64_state_t* s = XXH64_createState();
  XXH64_reset(s, 0);
  XXH64_update(s, &disk_size, sizeof disk_size);
  for (const ChunkRef& c : chunks) {
    XXH64_update(s, &c.offset, sizeof c.offset);
    XXH64_update(s, &c.length, sizeof c.length);
  }
  std::uint64_t h = XXH64_digest(s);
  XXH64_freeState(s);
  return h;
}

}  // namespace utsushi::p2v::wire
