#pragma once
// Shared-secret authentication primitives for the network tools (p2v
// serve/capture --to, livemig send/receive). Each tool keeps its own
// handshake messages and labels; this header holds only what they share:
//
//  - one token policy: a token file must be readable by its owner only (no
//    group or other permission bits) and hold at least k_min_token_size bytes
//    once surrounding white space is removed;
//  - HMAC-SHA256 (libcrypto), random nonces, constant-time comparison.
//
// All functions are safe for concurrent use.

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "utsushi/common/endian.h"
#include "utsushi/common/error.h"

namespace utsushi::auth {

inline constexpr std::size_t k_min_token_size = 16;
inline constexpr std::size_t k_nonce_size = 32;
inline constexpr std::size_t k_mac_size = 32;

using Nonce = std::array<std::uint8_t, k_nonce_size>;
using Mac = std::array<std::uint8_t, k_mac_size>;

// Reads the token in `path`: the file's content without leading or trailing
// white space. Fails with
//   not_found          the file cannot be opened or read;
//   permission_denied  the file is accessible by group or others (mode & 077);
//                      the message names the file, its mode and the fix
//                      ("chmod 600 PATH");
//   invalid_argument   the token is empty or shorter than k_min_token_size
//                      (see check_token).
[[nodiscard]] Result<std::string> read_token_file(const std::string& path);

// The length rule alone (for tokens that do not come from a file):
// invalid_argument naming `where` when `token` is shorter than k_min_token_size.
[[nodiscard]] Result<void> check_token(std::string_view token, std::string_view where);

// HMAC-SHA256 keyed with `key` over the concatenation of `parts`.
[[nodiscard]] Mac hmac_sha256(std::string_view key, std::initializer_list<std::span<const std::uint8_t>> parts);

// `text` as bytes (for a label among hmac_sha256's parts).
using ::utsushi::as_bytes;

// k_nonce_size bytes from the system's cryptographic generator (libcrypto,
// falling back to getrandom(2)); internal when neither yields bytes.
[[nodiscard]] Result<Nonce> random_nonce();

// 32 random bytes as 64 lowercase hex digits (a one-off token).
[[nodiscard]] Result<std::string> random_token();

// True when `a` and `b` have the same size and bytes; the time taken does not
// depend on where they differ.
[[nodiscard]] bool equal_constant_time(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept;

}  // namespace utsushi::auth
