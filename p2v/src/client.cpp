#include "utsushi/p2v/client.h"

#include <xxhash.h>
#include <zstd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "utsushi/common/auth.h"
#include "utsushi/common/cancel.h"
#include "utsushi/common/handles.h"
#include "utsushi/common/log.h"
#include "utsushi/common/net.h"
#include "utsushi/common/endian.h"
#include "utsushi/p2v/wire_format.h"

namespace utsushi::p2v {
namespace {

using wire::MsgType;
constexpr int k_zstd_level = 1;  // fast: the link, not the CPU, should be the bound

constexpr auto k_connect_timeout = std::chrono::seconds(30);

Result<void> authenticate(int fd, const std::string& token) {
  auto hello = UTSUSHI_TRY(wire::recv_frame(fd));
  if (hello.type != MsgType::hello || hello.payload.size() != 4 + wire::k_nonce_size) {
    return fail(Errc::corruption, "protocol error: the server did not say HELLO");
  }
  if (load_le32(hello.payload.data()) != wire::k_version) {
    return fail(Errc::not_supported, "the server speaks protocol version " + std::to_string(load_le32(hello.payload.data())));
  }
  std::span<const std::uint8_t> sn(hello.payload.data() + 4, wire::k_nonce_size);
  auto cn = UTSUSHI_TRY(auth::random_nonce());
  auto mac = wire::auth_mac(token, "p2v-client", sn, cn);
  std::vector<std::uint8_t> auth(cn.begin(), cn.end());
  auth.insert(auth.end(), mac.begin(), mac.end());
  UTSUSHI_TRY(wire::send_frame(fd, MsgType::auth, auth));
  auto reply = UTSUSHI_TRY(wire::recv_frame(fd));
  if (reply.type == MsgType::error) {
    return fail(Errc::permission_denied, "the server refused: " + std::string(reply.payload.begin(), reply.payload.end()));
  }
  if (reply.type != MsgType::auth_ok ||
      !auth::equal_constant_time(reply.payload, wire::auth_mac(token, "p2v-server", cn, sn))) {
    return fail(Errc::permission_denied, "the server did not prove it holds the token");
  }
  return {};
}

struct Encoded {
  std::vector<std::uint8_t> frame;  // CHUNK payload
  std::uint64_t plain = 0;
};

class Sender {
 public:
  Sender(imagefmt::BlockDevice& disk, const std::vector<wire::ChunkRef>& chunks, const ClientOptions& o, int fd)
      : m_disk(disk), m_chunks(chunks), m_o(o), m_fd(fd) {}

  // Sends `which` (chunk indexes); progress counts `base` bytes already done.
  Result<void> send(const std::vector<std::uint64_t>& which, std::uint64_t& done_bytes, std::uint64_t total,
                    SendResult& r) {
    unsigned n = m_o.threads ? m_o.threads : std::max(4u, std::thread::hardware_concurrency());
    const std::size_t cap = 2 * n;
    std::mutex mu;
    std::condition_variable cv_space, cv_item;
    std::deque<Encoded> queue;
    std::size_t next = 0, producers = n;
    std::optional<Error> error;
    bool stop = false;

    auto worker = [&] {
      ZstdCCtx cctx(ZSTD_createCCtx());
      ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, k_zstd_level);
      std::vector<std::uint8_t> plain(wire::k_chunk_size);
      for (;;) {
        std::size_t i;
        {
          std::lock_guard lock(mu);
          if (stop || next >= which.size()) {
            break;
          }
          i = next++;
        }
        const wire::ChunkRef& c = m_chunks[which[i]];
        auto span = std::span(plain).first(c.length);
        Encoded e;
        if (auto rd = m_disk.pread(span, c.offset); !rd) {
          std::lock_guard lock(mu);
          error = std::move(rd).error();
          stop = true;
          break;
        }
        std::size_t bound = ZSTD_compressBound(c.length);
        e.frame.resize(wire::k_chunk_header + bound);
        std::span<std::uint8_t> h(e.frame);
        for (int b = 0; b < 8; ++b) {
          h[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(which[i] >> (8 * b));
          h[static_cast<std::size_t>(8 + b)] = static_cast<std::uint8_t>(c.offset >> (8 * b));
        }
        store_le32(h.data() + 16, c.length);
        std::uint64_t hash = XXH64(span.data(), span.size(), 0);
        for (int b = 0; b < 8; ++b) {
          h[static_cast<std::size_t>(20 + b)] = static_cast<std::uint8_t>(hash >> (8 * b));
        }
        std::size_t z = ZSTD_compress2(cctx.get(), e.frame.data() + wire::k_chunk_header, bound, span.data(), span.size());
        if (ZSTD_isError(z)) {
          std::lock_guard lock(mu);
          error = Error(Errc::internal, std::string("zstd: ") + ZSTD_getErrorName(z));
          stop = true;
          break;
        }
        e.frame.resize(wire::k_chunk_header + z);
        e.plain = c.length;
        std::unique_lock lock(mu);
        cv_space.wait(lock, [&] { return stop || queue.size() < cap; });
        if (stop) {
          break;
        }
        queue.push_back(std::move(e));
        cv_item.notify_one();
      }
      std::lock_guard lock(mu);
      --producers;
      cv_item.notify_all();
    };

    std::vector<std::jthread> pool;
    for (unsigned t = 0; t < n; ++t) {
      pool.emplace_back(worker);
    }
    auto abort_with = [&](Error e) -> Result<void> {
      {
        std::lock_guard lock(mu);
        stop = true;
        if (!error) {
          error = std::move(e);
        }
      }
      cv_space.notify_all();
      pool.clear();
      return std::unexpected(std::move(*error));
    };
    for (;;) {
      Encoded e;
      {
        std::unique_lock lock(mu);
        cv_item.wait(lock, [&] { return !queue.empty() || producers == 0 || stop; });
        if (error) {
          break;
        }
        if (queue.empty()) {
          break;
        }
        e = std::move(queue.front());
        queue.pop_front();
        cv_space.notify_one();
      }
      if (auto c = check_cancelled(); !c) {
        return abort_with(std::move(c).error());
      }
      if (auto s = wire::send_frame(m_fd, MsgType::chunk, e.frame); !s) {
        return abort_with(std::move(s).error());
      }
      r.wire_bytes += e.frame.size() + wire::k_frame_header;
      ++r.chunks_sent;
      done_bytes += e.plain;
      if (m_o.progress) {
        m_o.progress(done_bytes, total);
      }
    }
    {
      // A worker's error ends the loop above while others may wait for queue
      // space: wake them before joining, or the join never returns.
      std::lock_guard lock(mu);
      stop = true;
    }
    cv_space.notify_all();
    pool.clear();
    if (error) {
      return std::unexpected(std::move(*error));
    }
    return {};
  }

 private:
  imagefmt::BlockDevice& m_disk;
  const std::vector<wire::ChunkRef>& m_chunks;
  const ClientOptions& m_o;
  int m_fd;
};

}  // namespace

Result<SendResult> send_disk(const std::string& source, const std::string& image_name, const ClientOptions& o) {
  auto start = std::chrono::steady_clock::now();
  UTSUSHI_TRY(auth::check_token(o.token, "p2v capture"));
  auto address = UTSUSHI_TRY(net::parse_host_port(o.address));
  auto disk = UTSUSHI_TRY(open_source(source));
  disk::DiskPlan plan = UTSUSHI_TRY(disk::plan_disk(*disk, source));
  const auto chunks = wire::make_chunks(plan.used);
  const std::uint64_t id = wire::plan_id(disk->size(), chunks);

  Fd conn = UTSUSHI_TRY(net::tcp_connect(address, k_connect_timeout));
  UTSUSHI_TRY(authenticate(conn.get(), o.token));
  char idhex[17];
  std::snprintf(idhex, sizeof idhex, "%016llx", static_cast<unsigned long long>(id));
  nlohmann::json begin = {{"name", image_name},
                          {"size", disk->size()},
                          {"format", std::string(output_format_name(o.format))},
                          {"compress", o.compress_image},
                          {"verify", o.verify},
                          {"chunk_size", wire::k_chunk_size},
                          {"chunks", chunks.size()},
                          {"plan_id", std::string(idhex)}};
  UTSUSHI_TRY(wire::send_frame(conn.get(), MsgType::begin, begin.dump()));
  auto st = UTSUSHI_TRY(wire::recv_frame(conn.get()));
  if (st.type == MsgType::error) {
    return fail(Errc::failed_precondition, "the server refused the disk: " + std::string(st.payload.begin(), st.payload.end()));
  }
  if (st.type != MsgType::state || st.payload.size() != 8 + (chunks.size() + 7) / 8 || load_le64(st.payload.data()) != chunks.size()) {
    return fail(Errc::corruption, "protocol error: bad STATE");
  }
  SendResult r;
  r.used_bytes = plan.used_bytes();
  std::vector<std::uint64_t> pending;
  std::uint64_t done_bytes = 0;
  for (std::uint64_t i = 0; i < chunks.size(); ++i) {
    if ((st.payload[8 + i / 8] >> (i % 8)) & 1) {
      ++r.chunks_skipped;
      done_bytes += chunks[i].length;
    } else {
      pending.push_back(i);
    }
  }
  if (r.chunks_skipped > 0) {
    UTSUSHI_LOG_INFO("{}: resuming: the server holds {} of {} chunks", source, r.chunks_skipped, chunks.size());
  }
  Sender sender(*disk, chunks, o, conn.get());
  for (int round = 0;; ++round) {
    UTSUSHI_TRY(sender.send(pending, done_bytes, plan.used_bytes(), r));
    UTSUSHI_TRY(wire::send_frame(conn.get(), MsgType::done, std::span<const std::uint8_t>()));
    auto res = UTSUSHI_TRY(wire::recv_frame(conn.get()));
    if (res.type != MsgType::result) {
      return fail(Errc::corruption, "protocol error: expected RESULT");
    }
    auto j = nlohmann::json::parse(res.payload.begin(), res.payload.end(), nullptr, false);
    std::string status = j.is_object() ? j.value("status", "") : "";
    if (status == "ok") {
      r.remote_path = j.value("path", "");
      break;
    }
    if (status == "resend" && j.contains("resend") && j["resend"].is_array()) {
      if (round >= o.max_retries) {
        return fail(Errc::corruption, "chunks still corrupt after " + std::to_string(o.max_retries) + " re-sends");
      }
      pending = j["resend"].get<std::vector<std::uint64_t>>();
      for (std::uint64_t i : pending) {
        if (i >= chunks.size()) {
          return fail(Errc::corruption, "protocol error: resend index out of range");
        }
      }
      r.resent += pending.size();
      UTSUSHI_LOG_WARN("{}: the server asks for {} chunk(s) again", source, pending.size());
      continue;
    }
    return fail(Errc::failed_precondition, "the server failed: " + (j.is_object() ? j.value("message", "?") : "?"));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace utsushi::p2v
