#include <catch2/catch.hpp>

#include <set>

#include "utsushi/guest/identity_edit.h"

using namespace utsushi::guest;

TEST_CASE("hosts: the old name replaced as a whole word, Debian's 127.0.1.1 line otherwise", "[guest][identity]") {
  const std::string in = "127.0.0.1\tlocalhost\n127.0.1.1\tgold.example.com gold\n# gold stays in comments\n"
                         "10.0.0.5 golden-db goldfish\n";
  Edited e = set_hosts_name(in, "gold.example.com", "web-01.example.com");
  CHECK(e.text == "127.0.0.1\tlocalhost\n127.0.1.1\tweb-01.example.com web-01\n# gold stays in comments\n"
                  "10.0.0.5 golden-db goldfish\n");
  e = set_hosts_name("127.0.0.1 localhost\n::1 localhost ip6-localhost\n", "", "web-02");
  CHECK(e.text == "127.0.0.1 localhost\n127.0.1.1\tweb-02\n::1 localhost ip6-localhost\n");
  e = set_hosts_name("127.0.0.1 localhost\n127.0.1.1 old\n", "other", "web-03");
  CHECK(e.text == "127.0.0.1 localhost\n127.0.1.1\tweb-03\n");
  CHECK(set_hosts_name("127.0.1.1\tweb-04\n", "web-04", "web-04").edits.empty());
}

TEST_CASE("shadow: root's hash and last change set, other fields kept", "[guest][identity]") {
  const std::string in = "root:*:19000:0:99999:7:::\ndeploy:!:19001:0:99999:7:::\n";
  auto e = set_shadow_password(in, "root", "$6$salt$hash", 20000);
  REQUIRE(e);
  CHECK(e->text == "root:$6$salt$hash:20000:0:99999:7:::\ndeploy:!:19001:0:99999:7:::\n");
  CHECK(e->edits.size() == 1);
  CHECK(e->edits[0].find("salt$hash") == std::string::npos);  // the hash is not repeated in the report
  CHECK(set_shadow_password(in, "nobody", "x", 1).error().code() == utsushi::Errc::not_found);
}

TEST_CASE("MACs: found in order, remapped in the original's case and separator", "[guest][identity]") {
  const std::string rule =
      "SUBSYSTEM==\"net\", ATTR{address}==\"52:54:00:75:74:06\", NAME=\"eth0\"\n"
      "SUBSYSTEM==\"net\", ATTR{address}==\"52:54:00:75:74:07\", NAME=\"eth1\"\n";
  CHECK(macs_in(rule) == std::vector<std::string>{"52:54:00:75:74:06", "52:54:00:75:74:07"});
  CHECK(macs_in("HWADDR=52-54-00-AB-CD-EF\nx=152:54:00:75:74:066\n") == std::vector<std::string>{"52:54:00:ab:cd:ef"});
  Edited e = remap_macs("HWADDR=52-54-00-AB-CD-EF\nmac=52:54:00:ab:cd:ef\n", {{"52:54:00:ab:cd:ef", "52:54:00:01:02:0a"}});
  CHECK(e.text == "HWADDR=52-54-00-01-02-0A\nmac=52:54:00:01:02:0a\n");
  CHECK(e.edits.size() == 2);
  Edited kept = keep_net_rules(rule, 1);
  CHECK(kept.text == "SUBSYSTEM==\"net\", ATTR{address}==\"52:54:00:75:74:06\", NAME=\"eth0\"\n");
  CHECK(keep_net_rules(rule, 2).text == rule);
}

TEST_CASE("NetworkManager: the connection UUID replaced or added", "[guest][identity]") {
  CHECK(set_nm_uuid("[connection]\nid=a\nuuid=old\n", "new").text == "[connection]\nid=a\nuuid=new\n");
  CHECK(set_nm_uuid("[connection]\nid=a\n[ipv4]\n", "new").text == "[connection]\nuuid=new\nid=a\n[ipv4]\n");
  CHECK(set_nm_uuid("[ipv4]\nmethod=auto\n", "new").text == "[connection]\nuuid=new\n[ipv4]\nmethod=auto\n");
}

TEST_CASE("random ids: RFC 4122 v4 UUIDs and machine ids, all distinct", "[guest][identity]") {
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    std::string u = random_uuid();
    REQUIRE(u.size() == 36);
    CHECK(u[14] == '4');
    CHECK(std::string("89ab").find(u[19]) != std::string::npos);
    std::string m = random_machine_id();
    REQUIRE(m.size() == 32);
    CHECK(m.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(seen.insert(u).second);
    CHECK(seen.insert(m).second);
  }
  CHECK(days_since_epoch(86400 * 20000 + 5) == 20000);
}
