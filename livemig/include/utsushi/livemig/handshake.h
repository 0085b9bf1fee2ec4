#pragma once
// Token handshake: mutual proof of a shared secret before any migration data.
// Nothing secret crosses the link; each side proves it knows the token with
// HMAC-SHA256 over both random nonces and its role:
//
//   client -> HELLO  payload "LMH1" | 32-byte client nonce
//   server -> HELLO  payload "LMH1" | 32-byte server nonce | HMAC(token, "server" | cn | sn)
//   client -> AUTH   payload HMAC(token, "client" | cn | sn)
//   server -> AUTH_OK (or ABORT "authentication failed")
//
// A wrong token is Errc::permission_denied on both sides. This authenticates
// the peer; it does not encrypt the stream (tunnel the link for that).

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "utsushi/livemig/link.h"

namespace utsushi::livemig {

using Mac = std::array<std::uint8_t, 32>;
using Nonce = std::array<std::uint8_t, 32>;

enum class Role { client, server };

// HMAC-SHA256(token, role name | client nonce | server nonce).
Mac handshake_mac(std::string_view token, Role role, const Nonce& client_nonce, const Nonce& server_nonce);

[[nodiscard]] Result<void> handshake_client(Link& link, std::string_view token, std::chrono::milliseconds timeout);
[[nodiscard]] Result<void> handshake_server(Link& link, std::string_view token, std::chrono::milliseconds timeout);

// Reads a token file: its content without trailing whitespace. Refuses an
// empty token and a token shorter than 16 bytes.
[[nodiscard]] Result<std::string> read_token_file(const std::string& path);
// 32 random bytes as hex (for `livemig migrate`, which needs no file).
[[nodiscard]] Result<std::string> random_token();

}  // namespace utsushi::livemig
