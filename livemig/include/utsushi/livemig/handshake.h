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
// The primitives (token file rules, HMAC, nonces, constant-time comparison)
// are common/auth.h's; this file holds only livemig's messages.

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "utsushi/common/auth.h"
#include "utsushi/livemig/link.h"

namespace utsushi::livemig {

using auth::Mac;
using auth::Nonce;

enum class Role { client, server };

// HMAC-SHA256(token, role name | client nonce | server nonce).
Mac handshake_mac(std::string_view token, Role role, const Nonce& client_nonce, const Nonce& server_nonce);

[[nodiscard]] Result<void> handshake_client(Link& link, std::string_view token, std::chrono::milliseconds timeout);
[[nodiscard]] Result<void> handshake_server(Link& link, std::string_view token, std::chrono::milliseconds timeout);

// Token files follow the one policy of common/auth.h (owner-only mode, at
// least 16 bytes); `livemig migrate` uses a random_token and needs no file.
using auth::random_token;
using auth::read_token_file;

}  // namespace utsushi::livemig
