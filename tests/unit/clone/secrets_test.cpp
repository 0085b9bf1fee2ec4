#include <catch2/catch.hpp>

#include <fstream>

#include "test_support.h"
#include "utsushi/clone/secrets.h"
#include "utsushi/common/process.h"

using namespace utsushi;
using namespace utsushi::clone;

TEST_CASE("host keys: made by ssh-keygen, fingerprints as ssh-keygen -l prints them", "[clone][secrets]") {
  if (!test::have("ssh-keygen")) {
    WARN("ssh-keygen missing");
    return;
  }
  auto keys = generate_host_keys({"ed25519", "ecdsa", "rsa"}, "root@web-01");
  REQUIRE(keys);
  REQUIRE(keys->size() == 3);
  test::TempDir tmp;
  for (const GeneratedKey& k : *keys) {
    CHECK(k.key.private_key.find("PRIVATE KEY") != std::string::npos);
    CHECK(k.key.public_key.find("root@web-01") != std::string::npos);
    std::string pub = tmp.file(k.key.type + ".pub");
    std::ofstream(pub) << k.key.public_key;
    auto r = run_process({"ssh-keygen", "-l", "-E", "sha256", "-f", pub});
    REQUIRE(r);
    REQUIRE(r->ok());
    CHECK(r->output.find(k.fingerprint + " ") != std::string::npos);
  }
  CHECK((*keys)[0].fingerprint != generate_host_keys({"ed25519"}, "x").value()[0].fingerprint);
  CHECK(generate_host_keys({"nonsense"}, "x").error().code() == Errc::not_supported);
  CHECK(ssh_fingerprint("ssh-ed25519 !!!! x").error().code() == Errc::invalid_argument);
  CHECK(ssh_fingerprint("no-space").error().code() == Errc::invalid_argument);
}

TEST_CASE("host key file names", "[clone][secrets]") {
  CHECK(host_key_type("ssh_host_ed25519_key") == "ed25519");
  CHECK(host_key_type("ssh_host_ed25519_key.pub").empty());
  CHECK(host_key_type("moduli").empty());
}

TEST_CASE("passwords: the first line of the file, hashed with SHA-512 crypt and a random salt", "[clone][secrets]") {
  test::TempDir tmp;
  std::ofstream(tmp.file("pw")) << "s3cret words\nsecond line\n";
  std::ofstream(tmp.file("empty")) << "\n";
  std::string pw = read_password_file(tmp.file("pw")).value();
  CHECK(pw == "s3cret words");
  CHECK(read_password_file(tmp.file("empty")).error().code() == Errc::invalid_argument);
  CHECK(read_password_file(tmp.file("missing")).error().code() == Errc::not_found);
  std::string hash = hash_password(pw).value();
  CHECK(hash.starts_with("$6$"));
  CHECK(hash != hash_password(pw).value());  // salted
  // OpenSSL's own SHA-512 crypt, as the oracle.
  std::string salt = hash.substr(3, hash.find('$', 3) - 3);
  auto r = run_process({"openssl", "passwd", "-6", "-salt", salt, pw});
  REQUIRE(r);
  CHECK(r->output == hash + "\n");
  r = run_process({"openssl", "passwd", "-6", "-salt", salt, "wrong"});
  CHECK(r->output != hash + "\n");
}
