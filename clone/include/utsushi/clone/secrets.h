#pragma once
// The secrets a clone gets: SSH host keys made on this host with OpenSSH's
// own ssh-keygen (so each clone's fingerprints are known before it boots,
// and an sshd that does not make keys itself, Debian's, starts), and the root
// password hashed with libxcrypt (SHA-512 crypt, which every Linux guest's
// PAM reads). The clear password exists only in memory while it is hashed.

#include <string>
#include <string_view>
#include <vector>

#include "utsushi/common/error.h"
#include "utsushi/guest/identity_ops.h"

namespace utsushi::clone {

struct GeneratedKey {
  guest::HostKey key;
  std::string fingerprint;  // "SHA256:..." as ssh-keygen -l prints it
};

// New host keys of `types` ("rsa", "ecdsa", "ed25519"; RSA of 3072 bits),
// each commented `comment`, made by ssh-keygen in a private temporary
// directory that is removed before returning. Errc::not_supported when
// ssh-keygen is missing or refuses a type.
[[nodiscard]] Result<std::vector<GeneratedKey>> generate_host_keys(const std::vector<std::string>& types,
                                                                   const std::string& comment);

// The SHA256 fingerprint of an OpenSSH public key line ("ssh-ed25519 AAAA...
// comment"): "SHA256:" + unpadded base64 of the SHA-256 of the decoded key
// blob, as ssh-keygen -l prints it. Errc::invalid_argument when the line is
// not a public key.
[[nodiscard]] Result<std::string> ssh_fingerprint(std::string_view public_key_line);

// The key type of a host key file name ("ssh_host_ed25519_key" -> "ed25519"),
// or "" when it is not one.
std::string host_key_type(std::string_view file_name);

// The first line of the password file `path`, without its newline.
// Errc::invalid_argument when it is empty.
[[nodiscard]] Result<std::string> read_password_file(const std::string& path);

// A SHA-512 crypt(3) hash ("$6$SALT$...") of `password` with a random salt.
[[nodiscard]] Result<std::string> hash_password(std::string_view password);

}  // namespace utsushi::clone
