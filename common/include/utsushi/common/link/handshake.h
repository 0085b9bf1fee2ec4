#pragma once
// The link's handshake: before any message of its protocol, each side of a
// Link (link.h) proves it knows a shared token, and both agree on the
// protocol. Nothing secret crosses the link; each proof is HMAC-SHA256 keyed
// with the token over its role, the protocol and both random nonces:
//
//   proof(role) = HMAC(token, role | 0x00 | name | 0x00 | be16 version | client nonce | server nonce)
//
//   client -> HELLO   (k_type_hello)   "UTLH" | u8 name length | name | be16 version | client nonce[32]
//   server -> HELLO   (k_type_hello)   "UTLH" | server nonce[32] | proof("server")
//   client -> AUTH    (k_type_auth)    proof("client")
//   server -> AUTH_OK (k_type_auth_ok) the protocol's greeting (<= k_handshake_max_payload bytes)
//
// Either side may answer REFUSE (k_type_refuse: u8 code, UTF-8 reason; codes
// in handshake.cpp)
// instead, and then closes: the server for another protocol or version
// (not_supported: a p2v client cannot talk to a livemig receiver), a wrong
// proof (permission_denied), or no room for another session (unavailable);
// the client for a server without the token. The server proves first, so a
// client never gives its proof to a peer that does not hold the token; the
// role in each proof keeps one side's proof from serving as the other's.
// This authenticates; it does not encrypt (tunnel the link for that).
//
// Limits: each side's whole handshake has one deadline (a peer that trickles
// bytes does not extend it), and every handshake frame is at most
// k_handshake_max_payload bytes; on success the link accepts its protocol's
// frame size (Link::set_authenticated).

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "utsushi/common/auth.h"
#include "utsushi/common/link/link.h"

namespace utsushi::link {

// A protocol on the link: its name (1..64 printable bytes) and version. Both
// must match exactly; the versions of both ends ship together.
struct Protocol {
  std::string_view name;
  std::uint16_t version = 0;
};

enum class Role { client, server };

// proof(role) as above.
[[nodiscard]] auth::Mac handshake_proof(std::string_view token, Role role, const Protocol& protocol,
                                        const auth::Nonce& client_nonce, const auth::Nonce& server_nonce);

// Client side. Returns the server's greeting (AUTH_OK's payload). Fails with
// permission_denied (wrong token, either side), not_supported (another
// protocol or version), unavailable (no answer by the deadline, the server is
// busy, the link dropped), corruption (not a utsushi peer).
[[nodiscard]] Result<Bytes> handshake_client(Link& link, const Protocol& protocol, std::string_view token,
                                             std::chrono::milliseconds timeout);

// Server side. `admit`, when set, runs once the client's proof is verified
// and before AUTH_OK: its error is sent to the client as REFUSE (e.g. "all
// sessions are taken") and returned. Fails as handshake_client does.
[[nodiscard]] Result<void> handshake_server(Link& link, const Protocol& protocol, std::string_view token,
                                            std::chrono::milliseconds timeout, std::span<const std::uint8_t> greeting,
                                            const std::function<Result<void>()>& admit = {});

}  // namespace utsushi::link
