#include "utsushi/livemig/handshake.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstring>

namespace utsushi::livemig {

namespace {

constexpr std::string_view k_hello_magic = "LMH1";

bool mac_equal(const Mac& expect, const std::uint8_t* got) {
  return auth::equal_constant_time(expect, std::span<const std::uint8_t>(got, expect.size()));
}

std::string peer_abort_reason(const Frame& f) {
  return std::string(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
}

const char* kind_name(ReceiverKind kind) {
  switch (kind) {
    case ReceiverKind::qmp: return "qmp";
    case ReceiverKind::libvirt: return "libvirt";
    case ReceiverKind::unknown: break;
  }
  return "unknown";
}

// AUTH_OK's payload; an empty or unreadable one (older receivers), or a kind
// this version does not know, is unknown.
ReceiverKind announced_kind(const Frame& ok) {
  auto j = nlohmann::json::parse(ok.text(), nullptr, false);
  std::string name = j.is_object() ? j.value("receiver", std::string()) : std::string();
  for (auto kind : {ReceiverKind::qmp, ReceiverKind::libvirt}) {
    if (name == kind_name(kind)) {
      return kind;
    }
  }
  return ReceiverKind::unknown;
}

}  // namespace

Mac handshake_mac(std::string_view token, Role role, const Nonce& cn, const Nonce& sn) {
  return auth::hmac_sha256(token, {auth::as_bytes(role == Role::client ? "client" : "server"), cn, sn});
}

Result<ReceiverKind> handshake_client(Link& link, std::string_view token, std::chrono::milliseconds timeout) {
  Nonce cn = UTSUSHI_TRY(auth::random_nonce());
  Bytes hello;
  put_string(hello, k_hello_magic);
  put_bytes(hello, cn);
  UTSUSHI_TRY(link.send(FrameType::hello, hello));
  auto reply = UTSUSHI_TRY_CTX(link.recv(timeout), "livemig handshake");
  if (reply.header.type == FrameType::abort) {
    return fail(Errc::permission_denied, "livemig handshake: receiver refused: " + peer_abort_reason(reply));
  }
  if (reply.header.type != FrameType::hello || reply.payload.size() != 4 + 32 + 32 ||
      std::memcmp(reply.payload.data(), k_hello_magic.data(), 4) != 0) {
    return fail(Errc::corruption, "livemig handshake: the peer is not a livemig receiver");
  }
  Nonce sn{};
  std::memcpy(sn.data(), reply.payload.data() + 4, 32);
  Mac expect = handshake_mac(token, Role::server, cn, sn);
  if (!mac_equal(expect, reply.payload.data() + 36)) {
    link.send_abort("authentication failed");
    return fail(Errc::permission_denied, "livemig handshake: the receiver does not know the token");
  }
  Mac mine = handshake_mac(token, Role::client, cn, sn);
  UTSUSHI_TRY(link.send(FrameType::auth, mine));
  auto ok = UTSUSHI_TRY_CTX(link.recv(timeout), "livemig handshake");
  if (ok.header.type == FrameType::abort) {
    return fail(Errc::permission_denied, "livemig handshake: receiver refused: " + peer_abort_reason(ok));
  }
  if (ok.header.type != FrameType::auth_ok) {
    return fail(Errc::corruption, "livemig handshake: unexpected frame from the receiver");
  }
  return announced_kind(ok);
}

Result<void> handshake_server(Link& link, std::string_view token, std::chrono::milliseconds timeout,
                              ReceiverKind kind) {
  auto hello = UTSUSHI_TRY_CTX(link.recv(timeout), "livemig handshake");
  if (hello.header.type != FrameType::hello || hello.payload.size() != 4 + 32 ||
      std::memcmp(hello.payload.data(), k_hello_magic.data(), 4) != 0) {
    link.send_abort("expected a livemig hello");
    return fail(Errc::corruption, "livemig handshake: the peer is not a livemig sender");
  }
  Nonce cn{};
  std::memcpy(cn.data(), hello.payload.data() + 4, 32);
  Nonce sn = UTSUSHI_TRY(auth::random_nonce());
  Bytes reply;
  reply.reserve(k_hello_magic.size() + sn.size() + 32);
  put_string(reply, k_hello_magic);
  put_bytes(reply, sn);
  put_bytes(reply, handshake_mac(token, Role::server, cn, sn));
  UTSUSHI_TRY(link.send(FrameType::hello, reply));
  auto auth = UTSUSHI_TRY_CTX(link.recv(timeout), "livemig handshake");
  if (auth.header.type == FrameType::abort) {
    return fail(Errc::permission_denied, "livemig handshake: sender refused: " + peer_abort_reason(auth));
  }
  Mac expect = handshake_mac(token, Role::client, cn, sn);
  if (auth.header.type != FrameType::auth || auth.payload.size() != 32 ||
      !mac_equal(expect, auth.payload.data())) {
    link.send_abort("authentication failed");
    return fail(Errc::permission_denied, "livemig handshake: the sender does not know the token");
  }
  return link.send_text(FrameType::auth_ok, nlohmann::json{{"receiver", kind_name(kind)}}.dump());
}

Result<void> expect_receiver(Link& link, ReceiverKind want, ReceiverKind got, std::string_view to) {
  if (got == ReceiverKind::unknown || got == want) {
    return {};
  }
  std::string why =
      got == ReceiverKind::libvirt
          ? fmt::format("the receiver at {} creates libvirt domains (livemig receive --libvirt) but this sender "
                        "migrates a QEMU by its QMP socket: migrate the domain through libvirt (send --libvirt URI "
                        "--domain NAME, or evacuate --libvirt URI), or run the receiver with --qmp DEST.sock",
                        to)
          : fmt::format("the receiver at {} feeds a QEMU started with -incoming defer (livemig receive --qmp) but "
                        "this sender migrates a libvirt domain: migrate by the QMP socket (send --qmp SRC.sock, or "
                        "evacuate --guest SRC.sock=HOST:PORT), or run the receiver with --libvirt URI",
                        to);
  link.send_abort(why);
  return fail(Errc::invalid_argument, std::move(why));
}

}  // namespace utsushi::livemig
