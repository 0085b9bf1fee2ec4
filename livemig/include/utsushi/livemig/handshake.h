#pragma once
// Token handshake: mutual proof of a shared secret before any migration data.
// Nothing secret crosses the link; each side proves it knows the token with
// HMAC-SHA256 over both random nonces and its role:
//
//   client -> HELLO  payload "LMH1" | 32-byte client nonce
//   server -> HELLO  payload "LMH1" | 32-byte server nonce | HMAC(token, "server" | cn | sn)
//   client -> AUTH   payload HMAC(token, "client" | cn | sn)
//   server -> AUTH_OK payload JSON {"receiver": "qmp" | "libvirt"}
//             (or ABORT "authentication failed")
//
// A wrong token is Errc::permission_denied on both sides. This authenticates
// the peer; it does not encrypt the stream (tunnel the link for that).
// The primitives (token file rules, HMAC, nonces, constant-time comparison)
// are common/auth.h's; this file holds only livemig's messages.
//
// AUTH_OK names the kind of receiver, because the two kinds wait for
// different first frames after the handshake: a QMP sender for the
// receiver's "mode", a libvirt receiver for the sender's "domain_xml". A
// mismatched pair would wait on each other until a timeout; with the kind
// known the sender stops at once (expect_receiver). Compatible without a
// version bump: senders before this ignore AUTH_OK's payload, and receivers
// before this send it empty (ReceiverKind::unknown: the sender goes on).

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

// What a receiver does with a stream: feeds a QEMU started with -incoming
// defer through its QMP socket (receive --qmp, migrate, evacuate's local
// pairs), or starts the sender's libvirt domain (receive --libvirt).
enum class ReceiverKind { unknown, qmp, libvirt };

// HMAC-SHA256(token, role name | client nonce | server nonce).
Mac handshake_mac(std::string_view token, Role role, const Nonce& client_nonce, const Nonce& server_nonce);

// Returns the kind the receiver announced (unknown from older receivers).
[[nodiscard]] Result<ReceiverKind> handshake_client(Link& link, std::string_view token,
                                                   std::chrono::milliseconds timeout);
// `kind` is announced to the sender in AUTH_OK.
[[nodiscard]] Result<void> handshake_server(Link& link, std::string_view token, std::chrono::milliseconds timeout,
                                            ReceiverKind kind);

// Sender, after handshake_client: a receiver of another kind than `want`
// (not unknown) is Errc::invalid_argument, with a message that names both
// kinds and what to run instead ("the receiver at `to` creates libvirt
// domains ..."); the receiver gets the same message as an ABORT, so both ends
// stop at once. Nothing has touched either guest yet.
[[nodiscard]] Result<void> expect_receiver(Link& link, ReceiverKind want, ReceiverKind got, std::string_view to);

// Token files follow the one policy of common/auth.h (owner-only mode, at
// least 16 bytes); `livemig migrate` uses a random_token and needs no file.
using auth::random_token;
using auth::read_token_file;

}  // namespace utsushi::livemig
