// The client of a network restore: the served image as a block device
// (remote_image.h, protocol image_wire.h).
#include "utsushi/v2p/remote_image.h"

#include <fmt/core.h>
#include <zstd.h>

#include <mutex>
#include <thread>
#include <vector>

#include "utsushi/common/cancel.h"
#include "utsushi/common/handles.h"
#include "utsushi/common/link/handshake.h"
#include "utsushi/common/log.h"
#include "utsushi/common/net.h"
#include "utsushi/common/zstd_stream.h"
#include "utsushi/v2p/image_wire.h"

namespace utsushi::v2p {
namespace {

using link::Clock;
using link::Link;
using wire::MsgType;

constexpr std::chrono::seconds k_connect_timeout{10};
constexpr std::chrono::seconds k_handshake_timeout{10};
constexpr std::chrono::seconds k_reply_timeout{120};  // a server reading a slow disk

// Errors that a new link does not mend: the server refused us, read failed on
// its side, or we were asked to stop.
bool worth_retrying(const Error& e) {
  switch (e.code()) {
    case Errc::permission_denied:
    case Errc::not_supported:
    case Errc::io_error:
    case Errc::cancelled:
    case Errc::invalid_argument:
      return false;
    default:
      return true;
  }
}

// Idle links to the server, one per thread that reads; new ones made on demand.
class LinkPool {
 public:
  LinkPool(net::HostPort at, std::string token) : m_at(std::move(at)), m_token(std::move(token)) {}

  [[nodiscard]] Result<std::unique_ptr<Link>> take() {
    {
      std::lock_guard lock(m_mutex);
      if (!m_idle.empty()) {
        auto l = std::move(m_idle.back());
        m_idle.pop_back();
        return l;
      }
    }
    auto l = std::make_unique<Link>(UTSUSHI_TRY(net::tcp_connect(m_at, k_connect_timeout)),
                                    link::LinkOptions{0, k_reply_timeout, wire::k_max_payload});
    UTSUSHI_TRY(link::handshake_client(*l, wire::k_protocol, m_token, k_handshake_timeout));
    return l;
  }

  void give(std::unique_ptr<Link> l) {
    std::lock_guard lock(m_mutex);
    m_idle.push_back(std::move(l));
  }

  std::string address() const { return net::format_host_port(m_at); }

 private:
  net::HostPort m_at;
  std::string m_token;
  std::mutex m_mutex;
  std::vector<std::unique_ptr<Link>> m_idle;
};

// One request and its reply on one link. An ERROR reply is the server's
// failure (io_error, not retried); any other reply but `want` is corruption.
[[nodiscard]] Result<link::Frame> ask(Link& l, MsgType type, const Bytes& request, MsgType want) {
  UTSUSHI_TRY(l.send(type, request));
  link::Frame f = UTSUSHI_TRY(l.recv(k_reply_timeout));
  if (f.header.type == MsgType::error) {
    std::string message = UTSUSHI_TRY(wire::decode_error(f.payload));
    return fail(Errc::io_error, "the server: " + message);
  }
  if (!(f.header.type == want)) {
    return fail(Errc::corruption, fmt::format("v2p-image: reply of type {} where {} was expected", f.header.type.value,
                                              static_cast<int>(want)));
  }
  return f;
}

class RemoteDriver final : public imagefmt::BlockDriver {
 public:
  RemoteDriver(std::unique_ptr<LinkPool> pool, wire::ImageInfo info, std::chrono::seconds reconnect_for)
      : m_pool(std::move(pool)), m_info(std::move(info)), m_reconnect_for(reconnect_for),
        m_description(fmt::format("{} on {}", m_info.name, m_pool->address())) {}

  std::string_view format_name() const override { return m_info.format; }
  const std::string& description() const override { return m_description; }
  std::uint64_t size() const override { return m_info.size; }
  imagefmt::Capabilities capabilities() const override {
    imagefmt::Capabilities c;
    c.can_extents = true;
    c.thread_safe = true;
    c.max_transfer = wire::k_max_read;
    c.preferred_io_size = wire::k_max_read;
    return c;
  }

  Result<void> pread(std::span<std::uint8_t> buf, std::uint64_t offset) override {
    const Bytes request = wire::encode_read({offset, static_cast<std::uint32_t>(buf.size())});
    return exchange(MsgType::read, request, MsgType::data, [&](const link::Frame& f) -> Result<void> {
      if (!(f.header.flags & link::k_flag_compressed) || f.header.raw_len != buf.size()) {
        return fail(Errc::corruption, fmt::format("v2p-image DATA: {} raw bytes where {} were asked",
                                                  f.header.raw_len, buf.size()));
      }
      thread_local ZstdDCtx dctx;
      if (!dctx) {
        dctx.reset(ZSTD_createDCtx());
        if (!dctx) {
          return fail(Errc::internal, "cannot allocate a zstd context");
        }
      }
      ZSTD_DCtx_reset(dctx.get(), ZSTD_reset_session_only);
      return zstd_decompress_exact(dctx.get(), f.payload, buf, ZstdInput::whole);
    });
  }

  Result<void> extents(std::uint64_t offset, std::uint64_t length, std::vector<imagefmt::Extent>& out) override {
    const wire::ExtentsRequest asked{offset, length};
    return exchange(MsgType::extents, wire::encode_extents_request(asked), MsgType::extents,
                    [&](const link::Frame& f) -> Result<void> {
                      auto list = UTSUSHI_TRY(wire::decode_extents(f.payload, asked, m_info.size));
                      out.insert(out.end(), list.begin(), list.end());
                      return {};
                    });
  }

 private:
  // Sends the request and hands the reply to `accept`, on a new link after a
  // failure that one may mend, until m_reconnect_for passes without a reply.
  template <class Accept>
  Result<void> exchange(MsgType type, const Bytes& request, MsgType want, const Accept& accept) {
    const auto give_up = Clock::now() + m_reconnect_for;
    auto pause = std::chrono::milliseconds(250);
    for (;;) {
      Result<void> done = try_once(type, request, want, accept);
      if (done || !worth_retrying(done.error())) {
        return done;
      }
      if (Clock::now() + pause >= give_up) {
        return fail(Errc::unavailable, fmt::format("the image server {} did not answer for {} s: {}",
                                                   m_pool->address(), m_reconnect_for.count(),
                                                   done.error().message()));
      }
      UTSUSHI_LOG_WARN("{}: {}; trying again in {} ms", m_pool->address(), done.error().message(), pause.count());
      for (auto until = Clock::now() + pause; Clock::now() < until;) {
        UTSUSHI_TRY(check_cancelled());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::seconds(5));
    }
  }

  template <class Accept>
  Result<void> try_once(MsgType type, const Bytes& request, MsgType want, const Accept& accept) {
    std::unique_ptr<Link> l = UTSUSHI_TRY(m_pool->take());
    link::Frame f = UTSUSHI_TRY(ask(*l, type, request, want));
    UTSUSHI_TRY(accept(f));
    m_pool->give(std::move(l));  // only a link in step goes back
    return {};
  }

  std::unique_ptr<LinkPool> m_pool;
  wire::ImageInfo m_info;
  std::chrono::seconds m_reconnect_for;
  std::string m_description;
};

}  // namespace

Result<RemoteImage> open_remote_image(const RemoteOptions& options) {
  auto at = UTSUSHI_TRY(net::parse_host_port(options.address));
  auto pool = std::make_unique<LinkPool>(at, options.token);
  wire::ImageInfo info;
  {
    auto taken = pool->take();
    if (!taken) {
      return std::unexpected(std::move(taken).error().with_context(fmt::format("the image server {}", options.address)));
    }
    std::unique_ptr<Link> l = std::move(*taken);
    link::Frame f = UTSUSHI_TRY(ask(*l, MsgType::info, {}, MsgType::info));
    info = UTSUSHI_TRY(wire::decode_info(f.payload));
    pool->give(std::move(l));
  }
  RemoteImage r;
  r.identity = "served " + info.identity;
  r.device = std::make_unique<imagefmt::BlockDevice>(
      std::make_unique<RemoteDriver>(std::move(pool), std::move(info), options.reconnect_for));
  return r;
}

}  // namespace utsushi::v2p
