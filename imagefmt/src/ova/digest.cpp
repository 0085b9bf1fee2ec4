// Message digests through libcrypto's EVP interface (see ova_format.h).
#include <openssl/evp.h>

#include "utsushi/imagefmt/ova_format.h"

namespace utsushi::imagefmt::ova {
namespace {

const EVP_MD* evp_md(DigestAlgorithm algorithm) noexcept {
  switch (algorithm) {
    case DigestAlgorithm::sha1: return EVP_sha1();
    case DigestAlgorithm::sha256: return EVP_sha256();
    case DigestAlgorithm::sha512: return EVP_sha512();
  }
  return nullptr;
}

struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

}  // namespace

struct Digest::Context {
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> ctx;
  bool finished = false;
};

std::string_view digest_name(DigestAlgorithm algorithm) noexcept {
  switch (algorithm) {
    case DigestAlgorithm::sha1: return "SHA1";
    case DigestAlgorithm::sha256: return "SHA256";
    case DigestAlgorithm::sha512: return "SHA512";
  }
  return "?";
}

std::size_t digest_size(DigestAlgorithm algorithm) noexcept {
  switch (algorithm) {
    case DigestAlgorithm::sha1: return 20;
    case DigestAlgorithm::sha256: return 32;
    case DigestAlgorithm::sha512: return 64;
  }
  return 0;
}

Digest::Digest(DigestAlgorithm algorithm, std::unique_ptr<Context> context)
    : m_algorithm(algorithm), m_context(std::move(context)) {}
Digest::Digest(Digest&&) noexcept = default;
Digest& Digest::operator=(Digest&&) noexcept = default;
Digest::~Digest() = default;

Result<Digest> Digest::create(DigestAlgorithm algorithm) {
  auto context = std::make_unique<Context>();
  context->ctx.reset(EVP_MD_CTX_new());
  if (!context->ctx || EVP_DigestInit_ex(context->ctx.get(), evp_md(algorithm), nullptr) != 1) {
    return fail(Errc::internal, "libcrypto cannot start a " + std::string(digest_name(algorithm)) + " digest");
  }
  return Digest(algorithm, std::move(context));
}

void Digest::update(std::span<const std::uint8_t> bytes) {
  // EVP_DigestUpdate fails only on a finished or broken context, which
  // hex_digest() then reports.
  if (!m_context->finished && EVP_DigestUpdate(m_context->ctx.get(), bytes.data(), bytes.size()) != 1) {
    m_context->finished = true;
  }
}

void Digest::update(std::string_view text) {
  update(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

Result<std::string> Digest::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (m_context->finished || EVP_DigestFinal_ex(m_context->ctx.get(), md, &n) != 1) {
    return fail(Errc::internal, std::string(digest_name(m_algorithm)) + " digest used after it was finished");
  }
  m_context->finished = true;
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    out += k_hex[md[i] >> 4];
    out += k_hex[md[i] & 15];
  }
  return out;
}

Result<std::string> hex_digest_of(DigestAlgorithm algorithm, std::string_view bytes) {
  Digest d = UTSUSHI_TRY(Digest::create(algorithm));
  d.update(bytes);
  return d.hex_digest();
}

}  // namespace utsushi::imagefmt::ova
