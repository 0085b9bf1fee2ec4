#include "utsushi/p2v/client.h"

#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include <fmt/core.h>

#include <chrono>
#include <thread>

#include "utsushi/common/auth.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/handles.h"
#include "utsushi/common/link/handshake.h"
#include "utsushi/common/log.h"
#include "utsushi/common/net.h"
#include "utsushi/common/ordered_pipeline.h"
#include "utsushi/common/zstd_stream.h"
#include "utsushi/p2v/wire_format.h"

namespace utsushi::p2v {
namespace {

using link::Link;
using wire::MsgType;
constexpr int k_zstd_level = 1;  // fast: the link, not the CPU, should be the bound
constexpr auto k_connect_timeout = std::chrono::seconds(30);
constexpr auto k_handshake_timeout = std::chrono::seconds(30);
constexpr auto k_reply_timeout = std::chrono::minutes(30);  // the server may write a large image after DONE

// What the server says, or why it stopped (its abort's reason).
Result<link::Frame> expect_reply(Link& link, MsgType want, std::string_view what) {
  auto f = UTSUSHI_TRY_CTX(link.recv(k_reply_timeout), what);
  if (f.header.type == link::k_type_abort) {
    return fail(Errc::failed_precondition, fmt::format("the server refused: {}", f.text()));
  }
  if (!(f.header.type == want)) {
    return fail(Errc::corruption, fmt::format("protocol error: expected {}", what));
  }
  return f;
}

// Reads, hashes and compresses the chunks `which` in parallel and sends them
// in order. `done_bytes` counts the bytes the server holds.
class ChunkSender {
 public:
  ChunkSender(imagefmt::BlockDevice& disk, const std::vector<wire::ChunkRef>& chunks, const ClientOptions& o,
              Link& link)
      : m_disk(disk), m_chunks(chunks), m_o(o), m_link(link) {}

  Result<void> send(const std::vector<std::uint64_t>& which, std::uint64_t& done_bytes, std::uint64_t total,
                    SendResult& r) {
    unsigned n = m_o.threads ? m_o.threads : std::max(4u, std::thread::hardware_concurrency());
    auto produce = [&](std::size_t i, Bytes& frame) { return encode(which[i], frame); };
    auto consume = [&](std::size_t i, Bytes& frame) -> Result<void> {
      UTSUSHI_TRY(check_cancelled());
      UTSUSHI_TRY(m_link.send(MsgType::chunk, frame));
      r.wire_bytes += frame.size() + link::k_frame_header;
      ++r.chunks_sent;
      done_bytes += m_chunks[which[i]].length;
      if (m_o.progress) {
        m_o.progress(done_bytes, total);
      }
      return {};
    };
    return run_ordered<Bytes>(which.size(), n, 2 * std::size_t{n}, produce, consume);
  }

 private:
  // One CHUNK payload: header, then the zstd frame of the plain bytes.
  Result<void> encode(std::uint64_t index, Bytes& frame) {
    thread_local ZstdCCtx cctx;
    thread_local Bytes plain;
    if (!cctx) {
      cctx.reset(ZSTD_createCCtx());
      if (!cctx) {
        return fail(Errc::internal, "cannot allocate a zstd context");
      }
      ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, k_zstd_level);
    }
    const wire::ChunkRef& c = m_chunks[index];
    plain.resize(c.length);
    UTSUSHI_TRY(m_disk.pread(plain, c.offset));
    frame.reserve(wire::k_chunk_header + ZSTD_compressBound(c.length));
    wire::encode_chunk_header(frame, {index, c.offset, c.length, XXH64(plain.data(), plain.size(), 0)});
    return zstd_compress_append(cctx.get(), plain, frame);
  }

  imagefmt::BlockDevice& m_disk;
  const std::vector<wire::ChunkRef>& m_chunks;
  const ClientOptions& m_o;
  Link& m_link;
};

std::string hex64(std::uint64_t v) { return fmt::format("{:016x}", v); }

}  // namespace

Result<std::string> default_client_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) {
    return fail_errno(errno, "gethostname");
  }
  std::string name(host);
  UTSUSHI_TRY(wire::check_name(name, "this host's name (give capture --name NAME)"));
  return name;
}

Result<SendResult> send_disk(const std::string& source, const std::string& image_name, const ClientOptions& o) {
  auto start = std::chrono::steady_clock::now();
  UTSUSHI_TRY(auth::check_token(o.token, "p2v capture"));
  UTSUSHI_TRY(wire::check_name(image_name, "the image name"));
  std::string client = o.client_name.empty() ? UTSUSHI_TRY(default_client_name()) : o.client_name;
  UTSUSHI_TRY(wire::check_name(client, "the client name (--name)"));
  auto address = UTSUSHI_TRY(net::parse_host_port(o.address));
  auto disk = UTSUSHI_TRY(open_source(source));
  disk::DiskPlan plan = UTSUSHI_TRY(disk::plan_disk(*disk, source));
  const auto chunks = wire::make_chunks(plan.used);

  Link link(UTSUSHI_TRY(net::tcp_connect(address, k_connect_timeout)),
            {0, std::chrono::seconds(60), wire::k_max_payload});
  UTSUSHI_TRY(link::handshake_client(link, wire::k_protocol, o.token, k_handshake_timeout));
  wire::Begin begin{client, image_name, disk->size(), std::string(output_format_name(o.format)), o.compress_image,
                    chunks.size(), hex64(wire::plan_id(disk->size(), chunks))};
  UTSUSHI_TRY(link.send(MsgType::begin, wire::encode_begin(begin)));
  auto st = UTSUSHI_TRY(expect_reply(link, MsgType::state, "STATE"));
  auto held = UTSUSHI_TRY(wire::decode_state(st.payload, chunks.size()));
  SendResult r;
  r.used_bytes = plan.used_bytes();
  std::vector<std::uint64_t> pending;
  std::uint64_t done_bytes = 0;
  for (std::uint64_t i = 0; i < chunks.size(); ++i) {
    if (held[i]) {
      ++r.chunks_skipped;
      done_bytes += chunks[i].length;
    } else {
      pending.push_back(i);
    }
  }
  if (r.chunks_skipped > 0) {
    UTSUSHI_LOG_INFO("{}: resuming: the server holds {} of {} chunks", source, r.chunks_skipped, chunks.size());
  }
  ChunkSender sender(*disk, chunks, o, link);
  for (int round = 0;; ++round) {
    UTSUSHI_TRY(sender.send(pending, done_bytes, plan.used_bytes(), r));
    UTSUSHI_TRY(link.send(MsgType::done, std::span<const std::uint8_t>()));
    auto res = UTSUSHI_TRY(expect_reply(link, MsgType::result, "RESULT"));
    auto outcome = UTSUSHI_TRY(wire::decode_result(res.payload, chunks.size()));
    if (outcome.status == wire::Outcome::Status::ok) {
      r.remote_path = outcome.path;
      break;
    }
    if (outcome.status == wire::Outcome::Status::error) {
      return fail(Errc::failed_precondition, "the server failed: " + outcome.message);
    }
    if (round >= o.max_retries) {
      return fail(Errc::corruption, "chunks still corrupt after " + std::to_string(o.max_retries) + " re-sends");
    }
    pending = std::move(outcome.resend);
    r.resent += pending.size();
    UTSUSHI_LOG_WARN("{}: the server asks for {} chunk(s) again", source, pending.size());
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace utsushi::p2v
