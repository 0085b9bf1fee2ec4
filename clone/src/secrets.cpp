#include "utsushi/clone/secrets.h"

#include <crypt.h>
#include <openssl/evp.h>

#include <fmt/core.h>

#include <fstream>
#include <sstream>

#include "utsushi/common/private_dir.h"
#include "utsushi/common/process.h"

namespace utsushi::clone {
namespace {

Result<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail_errno(errno, "reading " + path);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Standard base64 (RFC 4648) of `data`, with or without '=' padding.
std::string base64(const unsigned char* data, int size, bool pad) {
  std::string out(static_cast<std::size_t>(4 * ((size + 2) / 3)) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, size);
  out.resize(static_cast<std::size_t>(n));
  while (!pad && !out.empty() && out.back() == '=') {
    out.pop_back();
  }
  return out;
}

}  // namespace

Result<std::vector<GeneratedKey>> generate_host_keys(const std::vector<std::string>& types, const std::string& comment) {
  if (!program_exists("ssh-keygen")) {
    return fail(Errc::not_supported, "ssh-keygen (OpenSSH) is needed to make the clones' host keys");
  }
  PrivateDir dir = UTSUSHI_TRY(PrivateDir::create("utsushi-keys"));
  std::vector<GeneratedKey> out;
  for (const std::string& type : types) {
    std::string file = dir.path() + "/ssh_host_" + type + "_key";
    std::vector<std::string> argv{"ssh-keygen", "-q", "-t", type, "-N", "", "-C", comment, "-f", file};
    if (type == "rsa") {
      argv.insert(argv.begin() + 4, {"-b", "3072"});
    }
    ProcessOptions po;
    po.timeout = std::chrono::minutes(2);
    ProcessResult r = UTSUSHI_TRY(run_process(argv, po));
    if (!r.ok()) {
      return fail(Errc::not_supported, fmt::format("ssh-keygen -t {} failed: {}", type, r.output));
    }
    GeneratedKey k;
    k.key.type = type;
    k.key.private_key = UTSUSHI_TRY(slurp(file));
    k.key.public_key = UTSUSHI_TRY(slurp(file + ".pub"));
    k.fingerprint = UTSUSHI_TRY(ssh_fingerprint(k.key.public_key));
    out.push_back(std::move(k));
  }
  return out;
}

Result<std::string> ssh_fingerprint(std::string_view line) {
  auto bad = [&] { return fail(Errc::invalid_argument, fmt::format("not an OpenSSH public key: '{}'", line.substr(0, 60))); };
  std::size_t space = line.find(' ');
  if (space == std::string_view::npos) {
    return bad();
  }
  std::string_view b64 = line.substr(space + 1);
  b64 = b64.substr(0, b64.find_first_of(" \n\r\t"));
  if (b64.empty() || b64.size() % 4 != 0) {
    return bad();
  }
  std::string blob(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(blob.data()), reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) {
    return bad();
  }
  std::size_t padding = b64.ends_with("==") ? 2 : b64.ends_with("=") ? 1 : 0;
  blob.resize(static_cast<std::size_t>(n) - padding);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_Digest(blob.data(), blob.size(), digest, &digest_size, EVP_sha256(), nullptr) != 1) {
    return fail(Errc::internal, "SHA-256 failed");
  }
  return "SHA256:" + base64(digest, static_cast<int>(digest_size), false);
}

std::string host_key_type(std::string_view file_name) {
  constexpr std::string_view prefix = "ssh_host_", suffix = "_key";
  if (file_name.size() > prefix.size() + suffix.size() && file_name.starts_with(prefix) && file_name.ends_with(suffix)) {
    return std::string(file_name.substr(prefix.size(), file_name.size() - prefix.size() - suffix.size()));
  }
  return {};
}

Result<std::string> read_password_file(const std::string& path) {
  std::string text = UTSUSHI_TRY(slurp(path));
  std::string first = text.substr(0, text.find('\n'));
  if (!first.empty() && first.back() == '\r') {
    first.pop_back();
  }
  if (first.empty()) {
    return fail(Errc::invalid_argument, fmt::format("{}: the password file's first line is empty", path));
  }
  return first;
}

Result<std::string> hash_password(std::string_view password) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$6$", 0, nullptr, 0, salt, sizeof salt) == nullptr) {
    return fail_errno(errno, "making a password salt");
  }
  crypt_data data{};
  std::string clear(password);
  const char* hash = crypt_rn(clear.c_str(), salt, &data, sizeof data);
  std::fill(clear.begin(), clear.end(), '\0');
  if (hash == nullptr || hash[0] == '*') {
    return fail_errno(errno == 0 ? EINVAL : errno, "hashing the password");
  }
  std::string out(hash);
  explicit_bzero(&data, sizeof data);
  return out;
}

}  // namespace utsushi::clone
