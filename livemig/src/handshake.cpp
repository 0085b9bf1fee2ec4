#include "utsushi/livemig/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fmt/core.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace utsushi::livemig {

namespace {

constexpr std::string_view k_hello_magic = "LMH1";

Result<Nonce> make_nonce() {
  Nonce n{};
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) {
    return fail(Errc::internal, "livemig: no random bytes for the handshake nonce");
  }
  return n;
}

bool mac_equal(const std::uint8_t* a, const std::uint8_t* b) { return CRYPTO_memcmp(a, b, 32) == 0; }

std::string peer_abort_reason(const Frame& f) {
  return std::string(reinterpret_cast<const char*>(f.payload.data()), f.payload.size());
}

}  // namespace

Mac handshake_mac(std::string_view token, Role role, const Nonce& cn, const Nonce& sn) {
  Bytes msg;
  put_string(msg, role == Role::client ? "client" : "server");
  put_bytes(msg, cn);
  put_bytes(msg, sn);
  Mac mac{};
  unsigned len = 0;
  HMAC(EVP_sha256(), token.data(), static_cast<int>(token.size()), msg.data(), msg.size(), mac.data(), &len);
  return mac;
}

Result<void> handshake_client(Link& link, std::string_view token, std::chrono::milliseconds timeout) {
  Nonce cn = UTSUSHI_TRY(make_nonce());
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
  if (!mac_equal(expect.data(), reply.payload.data() + 36)) {
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
  return {};
}

Result<void> handshake_server(Link& link, std::string_view token, std::chrono::milliseconds timeout) {
  auto hello = UTSUSHI_TRY_CTX(link.recv(timeout), "livemig handshake");
  if (hello.header.type != FrameType::hello || hello.payload.size() != 4 + 32 ||
      std::memcmp(hello.payload.data(), k_hello_magic.data(), 4) != 0) {
    link.send_abort("expected a livemig hello");
    return fail(Errc::corruption, "livemig handshake: the peer is not a livemig sender");
  }
  Nonce cn{};
  std::memcpy(cn.data(), hello.payload.data() + 4, 32);
  Nonce sn = UTSUSHI_TRY(make_nonce());
  Bytes reply;
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
      !mac_equal(expect.data(), auth.payload.data())) {
    link.send_abort("authentication failed");
    return fail(Errc::permission_denied, "livemig handshake: the sender does not know the token");
  }
  return link.send(FrameType::auth_ok, {});
}

Result<std::string> read_token_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(Errc::not_found, fmt::format("cannot read token file '{}'", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ' || t.back() == '\t')) {
    t.pop_back();
  }
  if (t.size() < 16) {
    return fail(Errc::invalid_argument, fmt::format("token in '{}' is shorter than 16 bytes", path));
  }
  return t;
}

Result<std::string> random_token() {
  Nonce n = UTSUSHI_TRY(make_nonce());
  std::string hex;
  for (auto b : n) {
    hex += fmt::format("{:02x}", b);
  }
  return hex;
}

}  // namespace utsushi::livemig
