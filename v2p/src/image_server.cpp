// The server of a network restore (remote_image.h, protocol image_wire.h).
#include <fmt/core.h>
#include <zstd.h>

#include <filesystem>

#include "utsushi/common/handles.h"
#include "utsushi/common/link/server.h"
#include "utsushi/common/log.h"
#include "utsushi/common/zstd_stream.h"
#include "utsushi/v2p/image_wire.h"
#include "utsushi/v2p/remote_image.h"
#include "utsushi/v2p/source_image.h"

namespace utsushi::v2p {
namespace {

using link::Link;
using wire::MsgType;

constexpr int k_zstd_level = 1;  // fast: the link, not the CPU, should be the bound
// A client copying stops between windows to flush its target.
constexpr std::chrono::minutes k_idle_timeout{10};

// One link's requests, one at a time, until the client closes it. A request
// the image cannot answer gets ERROR and the link goes on; a malformed one
// ends the link (the client's next link starts in step).
class Session {
 public:
  Session(Link& link, imagefmt::BlockDevice& image, const Bytes& info) : m_link(link), m_image(image), m_info(info) {}

  Result<void> run() {
    m_cctx.reset(ZSTD_createCCtx());
    if (!m_cctx) {
      return fail(Errc::internal, "cannot allocate a zstd context");
    }
    ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_compressionLevel, k_zstd_level);
    for (;;) {
      auto f = m_link.recv(k_idle_timeout);
      if (!f) {
        return f.error().code() == Errc::unavailable ? Result<void>{} : std::unexpected(std::move(f).error());
      }
      switch (static_cast<MsgType>(f->header.type.value)) {
        case MsgType::info:
          UTSUSHI_TRY(m_link.send(MsgType::info, m_info));
          break;
        case MsgType::read: {
          wire::ReadRequest r = UTSUSHI_TRY(wire::decode_read(f->payload, m_image.size()));
          UTSUSHI_TRY(read(r));
          break;
        }
        case MsgType::extents: {
          wire::ExtentsRequest r = UTSUSHI_TRY(wire::decode_extents_request(f->payload, m_image.size()));
          UTSUSHI_TRY(extents(r));
          break;
        }
        default:
          return fail(Errc::corruption, fmt::format("v2p-image: unexpected message type {}", f->header.type.value));
      }
    }
  }

 private:
  Result<void> read(const wire::ReadRequest& r) {
    m_plain.resize(r.length);
    if (auto got = m_image.pread(m_plain, r.offset); !got) {
      return send_error(got.error());
    }
    m_packed.clear();
    UTSUSHI_TRY(zstd_compress_append(m_cctx.get(), m_plain, m_packed));
    return m_link.send(MsgType::data, m_packed, link::k_flag_compressed, r.length);
  }

  Result<void> extents(const wire::ExtentsRequest& r) {
    auto list = m_image.extents(r.offset, r.length);
    if (!list) {
      return send_error(list.error());
    }
    if (list->size() > wire::k_max_extents) {
      list->resize(wire::k_max_extents);  // the client asks again from where these end
    }
    return m_link.send(MsgType::extents, wire::encode_extents(*list));
  }

  Result<void> send_error(const Error& e) {
    UTSUSHI_LOG_WARN("{}: {}", m_image.description(), e.message());
    return m_link.send(MsgType::error, wire::encode_error(e.message()));
  }

  Link& m_link;
  imagefmt::BlockDevice& m_image;
  const Bytes& m_info;
  ZstdCCtx m_cctx;
  Bytes m_plain, m_packed;
};

}  // namespace

Result<void> serve_image(const ServeImageOptions& o) {
  auto address = UTSUSHI_TRY(net::parse_host_port(o.listen));
  SourceImage image = UTSUSHI_TRY(open_source_image(o.image, o.format));
  wire::ImageInfo info;
  info.size = image.device->size();
  info.format = std::string(image.device->format_name());
  info.identity = image.identity;
  info.name = std::filesystem::path(o.image).filename().string();
  const Bytes info_bytes = wire::encode_info(info);

  link::ServerOptions so;
  so.protocol = wire::k_protocol;
  so.token = o.token;
  so.link = link::LinkOptions{0, std::chrono::seconds(60), wire::k_max_payload};
  so.max_sessions = std::max(1u, o.sessions);
  auto server = UTSUSHI_TRY(link::Server::listen(address, std::move(so)));
  if (o.on_listening) {
    o.on_listening(server.port());
  }
  if (o.report) {
    o.report(fmt::format("serving {} ({}, {} bytes) on {}", o.image, info.format, info.size,
                         net::format_host_port({address.host, std::to_string(server.port())})));
  }
  return server.run([&](Link& link) {
    Session session(link, *image.device, info_bytes);
    if (auto r = session.run(); !r) {
      UTSUSHI_LOG_WARN("a client's link ended: {}", r.error().message());
    }
    return link::AfterSession::serve_on;
  });
}

}  // namespace utsushi::v2p
