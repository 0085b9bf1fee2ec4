#pragma once
// livemig's handshake: the link layer's (common/link/handshake.h: mutual
// HMAC-SHA256 proof of the token over both nonces, the token never sent) for
// protocol "livemig", version k_protocol_version (frame.h). A peer of another
// protocol (a p2v client) or version is refused with not_supported.
//
// The receiver's greeting (AUTH_OK) names its kind, JSON {"receiver": "qmp" |
// "libvirt"}, because the two kinds wait for different first frames after the
// handshake: a QMP sender for the receiver's "mode", a libvirt receiver for
// the sender's "domain_xml". A mismatched pair would wait on each other until
// a timeout; with the kind known the sender stops at once (expect_receiver).
//
// A wrong token is Errc::permission_denied on both sides. This authenticates
// the peer; it does not encrypt the stream (tunnel the link for that).

#include <chrono>
#include <string_view>

#include "utsushi/common/auth.h"
#include "utsushi/common/link/handshake.h"
#include "utsushi/livemig/link.h"

namespace utsushi::livemig {

inline constexpr link::Protocol k_protocol{"livemig", k_protocol_version};

// What a receiver does with a stream: feeds a QEMU started with -incoming
// defer through its QMP socket (receive --qmp, migrate, evacuate's local
// pairs), or starts the sender's libvirt domain (receive --libvirt).
enum class ReceiverKind { unknown, qmp, libvirt };

// The receiver's greeting for `kind`.
[[nodiscard]] Bytes receiver_greeting(ReceiverKind kind);

// Returns the kind the receiver announced (unknown when its greeting does not
// name one this version knows). `timeout` bounds the whole handshake.
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
