#include "utsushi/common/auth.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "utsushi/common/fd.h"

namespace utsushi::auth {
namespace {

constexpr std::size_t k_max_token_file = 64 * 1024;  // a token, not a document
constexpr std::string_view k_space = " \t\r\n";

}  // namespace

Result<void> check_token(std::string_view token, std::string_view where) {
  if (token.empty()) {
    return fail(Errc::invalid_argument, fmt::format("{}: the token is empty", where));
  }
  if (token.size() < k_min_token_size) {
    return fail(Errc::invalid_argument, fmt::format("{}: the token is {} bytes; at least {} are needed", where,
                                                    token.size(), k_min_token_size));
  }
  return {};
}

Result<std::string> read_token_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return fail(Errc::not_found, fmt::format("cannot read token file '{}': {}", path, std::strerror(errno)), errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail_errno(errno, fmt::format("token file '{}'", path));
  }
  if ((st.st_mode & 077) != 0) {
    return fail(Errc::permission_denied,
                fmt::format("token file '{}' is accessible by group or others (mode {:04o}); make it private to its "
                            "owner: chmod 600 '{}'",
                            path, st.st_mode & 07777, path));
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(Errc::not_found, fmt::format("cannot read token file '{}': {}", path, std::strerror(errno)), errno);
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > k_max_token_file) {
      return fail(Errc::invalid_argument, fmt::format("token file '{}' is larger than {} bytes", path, k_max_token_file));
    }
  }
  auto b = text.find_first_not_of(k_space);
  std::string token = b == std::string::npos ? std::string() : text.substr(b, text.find_last_not_of(k_space) - b + 1);
  UTSUSHI_TRY(check_token(token, fmt::format("token file '{}'", path)));
  return token;
}

Mac hmac_sha256(std::string_view key, std::initializer_list<std::span<const std::uint8_t>> parts) {
  std::vector<std::uint8_t> msg;
  for (auto p : parts) {
    msg.insert(msg.end(), p.begin(), p.end());
  }
  Mac mac{};
  unsigned len = 0;
  // HMAC() fails only when libcrypto cannot allocate: nothing to retry.
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg.data(), msg.size(), mac.data(), &len) ==
          nullptr ||
      len != mac.size()) {
    std::abort();
  }
  return mac;
}

Result<Nonce> random_nonce() {
  Nonce n{};
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) == 1) {
    return n;
  }
  // Fall back to the kernel; a nonce must never be predictable.
  std::size_t done = 0;
  while (done < n.size()) {
    ssize_t r = ::getrandom(n.data() + done, n.size() - done, 0);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(Errc::internal, fmt::format("no random bytes for a nonce: {}", std::strerror(errno)), errno);
    }
    done += static_cast<std::size_t>(r);
  }
  return n;
}

Result<std::string> random_token() {
  Nonce n = UTSUSHI_TRY(random_nonce());
  std::string hex;
  hex.reserve(2 * n.size());
  for (auto b : n) {
    hex += fmt::format("{:02x}", b);
  }
  return hex;
}

bool equal_constant_time(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace utsushi::auth
