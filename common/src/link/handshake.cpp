#include "utsushi/common/link/handshake.h"

#include <fmt/core.h>

namespace utsushi::link {

using namespace std::chrono;

namespace {

constexpr std::string_view k_hello_magic = "UTLH";
constexpr std::size_t k_max_protocol_name = 64;

std::string describe(const Protocol& p) { return fmt::format("{} (protocol version {})", p.name, p.version); }

bool printable(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

// REFUSE's first byte: index + 1 in this table (0 and unknown codes read as
// permission_denied). Part of the wire format: append only.
constexpr Errc k_refuse_codes[] = {Errc::permission_denied, Errc::not_supported,  Errc::unavailable,
                                   Errc::failed_precondition, Errc::invalid_argument, Errc::corruption};

std::uint8_t refuse_code(Errc code) {
  for (std::size_t i = 0; i < std::size(k_refuse_codes); ++i) {
    if (k_refuse_codes[i] == code) {
      return static_cast<std::uint8_t>(i + 1);
    }
  }
  return 1;
}

Errc refuse_errc(std::uint8_t code) {
  return code >= 1 && code <= std::size(k_refuse_codes) ? k_refuse_codes[code - 1] : Errc::permission_denied;
}

// Sends REFUSE (best effort) and returns the error it carries.
Error refuse(Link& link, Error e) {
  Bytes p;
  p.reserve(1 + e.message().size());
  put_u8(p, refuse_code(e.code()));
  put_string(p, std::string_view(e.message()).substr(0, k_handshake_max_payload - 1));
  (void)link.send(k_type_refuse, p);
  return e;
}

// The error a REFUSE or ABORT from the peer stands for, or a protocol error
// when `f` is neither (and not `want`).
Result<void> expect(const Frame& f, std::uint8_t want, std::string_view peer) {
  if (f.header.type.value == want) {
    return {};
  }
  if (f.header.type.value == k_type_refuse && !f.payload.empty()) {
    return fail(refuse_errc(f.payload[0]), fmt::format("the {} refused: {}", peer, as_text(std::span(f.payload).subspan(1))));
  }
  if (f.header.type.value == k_type_abort) {
    return fail(Errc::permission_denied, fmt::format("the {} refused: {}", peer, as_text(f.payload)));
  }
  return fail(Errc::corruption, fmt::format("link handshake: unexpected message {} from the {}", f.header.type.value, peer));
}

struct ClientHello {
  std::string name;
  std::uint16_t version = 0;
  auth::Nonce nonce{};
};

Result<ClientHello> decode_client_hello(std::span<const std::uint8_t> payload) {
  Cursor c(payload, "link handshake: client hello");
  auto magic = UTSUSHI_TRY(c.take(k_hello_magic.size()));
  if (as_text(magic) != k_hello_magic) {
    return fail(Errc::corruption, "link handshake: the peer is not a utsushi program");
  }
  ClientHello h;
  auto len = UTSUSHI_TRY(c.u8());
  h.name = std::string(as_text(UTSUSHI_TRY(c.take(len))));
  h.version = UTSUSHI_TRY(c.be16());
  auto n = UTSUSHI_TRY(c.take(h.nonce.size()));
  std::copy(n.begin(), n.end(), h.nonce.begin());
  if (!c.done() || !printable(h.name)) {
    return fail(Errc::corruption, "link handshake: malformed client hello");
  }
  return h;
}

}  // namespace

auth::Mac handshake_proof(std::string_view token, Role role, const Protocol& protocol, const auth::Nonce& cn,
                          const auth::Nonce& sn) {
  Bytes label;
  label.reserve(8 + protocol.name.size() + 3);
  put_string(label, role == Role::client ? "client" : "server");
  put_u8(label, 0);
  put_string(label, protocol.name);
  put_u8(label, 0);
  put_be16(label, protocol.version);
  return auth::hmac_sha256(token, {label, cn, sn});
}

Result<Bytes> handshake_client(Link& link, const Protocol& protocol, std::string_view token, milliseconds timeout) {
  if (protocol.name.empty() || protocol.name.size() > k_max_protocol_name || !printable(protocol.name)) {
    return fail(Errc::internal, "link handshake: bad protocol name");
  }
  auto deadline = Clock::now() + timeout;
  auth::Nonce cn = UTSUSHI_TRY(auth::random_nonce());
  Bytes hello;
  hello.reserve(k_hello_magic.size() + 1 + protocol.name.size() + 2 + cn.size());
  put_string(hello, k_hello_magic);
  put_u8(hello, static_cast<std::uint8_t>(protocol.name.size()));
  put_string(hello, protocol.name);
  put_be16(hello, protocol.version);
  put_bytes(hello, cn);
  UTSUSHI_TRY(link.send(k_type_hello, hello));

  auto reply = UTSUSHI_TRY_CTX(link.recv_by(deadline), "link handshake");
  UTSUSHI_TRY(expect(reply, k_type_hello, "server"));
  Cursor c(reply.payload, "link handshake: server hello");
  auto magic = UTSUSHI_TRY(c.take(k_hello_magic.size()));
  auto sn_bytes = UTSUSHI_TRY(c.take(auth::k_nonce_size));
  auto proof = UTSUSHI_TRY(c.take(auth::k_mac_size));
  if (as_text(magic) != k_hello_magic || !c.done()) {
    return fail(Errc::corruption, "link handshake: the peer is not a utsushi server");
  }
  auth::Nonce sn{};
  std::copy(sn_bytes.begin(), sn_bytes.end(), sn.begin());
  if (!auth::equal_constant_time(handshake_proof(token, Role::server, protocol, cn, sn), proof)) {
    return std::unexpected(
        refuse(link, Error(Errc::permission_denied, "link handshake: wrong token: the server does not know this token")));
  }
  UTSUSHI_TRY(link.send(k_type_auth, handshake_proof(token, Role::client, protocol, cn, sn)));
  auto ok = UTSUSHI_TRY_CTX(link.recv_by(deadline), "link handshake");
  UTSUSHI_TRY(expect(ok, k_type_auth_ok, "server"));
  link.set_authenticated();
  return std::move(ok.payload);
}

Result<void> handshake_server(Link& link, const Protocol& protocol, std::string_view token, milliseconds timeout,
                              std::span<const std::uint8_t> greeting, const std::function<Result<void>()>& admit) {
  auto deadline = Clock::now() + timeout;
  auto hello_frame = UTSUSHI_TRY_CTX(link.recv_by(deadline), "link handshake");
  UTSUSHI_TRY(expect(hello_frame, k_type_hello, "client"));
  auto hello = decode_client_hello(hello_frame.payload);
  if (!hello) {
    return std::unexpected(refuse(link, std::move(hello).error()));
  }
  if (hello->name != protocol.name || hello->version != protocol.version) {
    Protocol theirs{hello->name, hello->version};
    return std::unexpected(refuse(link, Error(Errc::not_supported,
                                              fmt::format("this is a {} server; a {} client cannot talk to it",
                                                          describe(protocol), describe(theirs)))));
  }
  auth::Nonce sn = UTSUSHI_TRY(auth::random_nonce());
  Bytes reply;
  reply.reserve(k_hello_magic.size() + sn.size() + auth::k_mac_size);  // (GCC 12 -O3 stringop-overflow otherwise)
  put_string(reply, k_hello_magic);
  put_bytes(reply, sn);
  put_bytes(reply, handshake_proof(token, Role::server, protocol, hello->nonce, sn));
  UTSUSHI_TRY(link.send(k_type_hello, reply));

  auto auth_frame = UTSUSHI_TRY_CTX(link.recv_by(deadline), "link handshake");
  UTSUSHI_TRY(expect(auth_frame, k_type_auth, "client"));
  if (!auth::equal_constant_time(handshake_proof(token, Role::client, protocol, hello->nonce, sn),
                                 auth_frame.payload)) {
    return std::unexpected(refuse(link, Error(Errc::permission_denied, "authentication failed: wrong token")));
  }
  if (admit) {
    if (auto a = admit(); !a) {
      return std::unexpected(refuse(link, std::move(a).error()));
    }
  }
  if (greeting.size() > k_handshake_max_payload) {
    return fail(Errc::internal, "link handshake: greeting too long");
  }
  UTSUSHI_TRY(link.send(k_type_auth_ok, greeting));
  link.set_authenticated();
  return {};
}

}  // namespace utsushi::link
