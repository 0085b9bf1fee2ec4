#include <catch2/catch.hpp>

#include "utsushi/clone/naming.h"

using namespace utsushi;
using namespace utsushi::clone;
using Names = std::vector<std::string>;

TEST_CASE("clone names: a count and a pattern, or a list", "[clone][naming]") {
  CHECK(clone_names({}, 3, "web-{n:02}").value() == Names{"web-01", "web-02", "web-03"});
  CHECK(clone_names({"a", "b"}, 0, "x").value() == Names{"a", "b"});
  CHECK(clone_names({}, 0, "x").error().code() == Errc::invalid_argument);
  CHECK(clone_names({"a"}, 2, "x-{n}").error().code() == Errc::invalid_argument);
  auto same = clone_names({}, 2, "web");
  REQUIRE_FALSE(same);
  CHECK_THAT(same.error().message(), Catch::Contains("repeats"));
  CHECK(clone_names({"a", "a"}, 0, "").error().code() == Errc::invalid_argument);
  CHECK(clone_names({"bad/name"}, 0, "").error().code() == Errc::invalid_argument);
  CHECK(clone_names({}, 1, "web-{m}").error().code() == Errc::invalid_argument);
  CHECK(expand_pattern("{name}.example.com", 4, "web-04").value() == "web-04.example.com");
}

TEST_CASE("clone and host names are checked", "[clone][naming]") {
  CHECK(check_clone_name("web-01.prod_a"));
  CHECK_FALSE(check_clone_name(".hidden"));
  CHECK_FALSE(check_clone_name("-x"));
  CHECK_FALSE(check_clone_name(std::string(65, 'a')));
  CHECK(check_hostname("web-01.example.com"));
  CHECK_FALSE(check_hostname("web_01"));
  CHECK_FALSE(check_hostname("-web"));
  CHECK_FALSE(check_hostname("a..b"));
  CHECK_FALSE(check_hostname(std::string(64, 'a')));
}

TEST_CASE("patterns match as fnmatch does", "[clone][naming]") {
  CHECK(matches("web-*", "web-01"));
  CHECK(matches("web-0?", "web-01"));
  CHECK(matches("web-0[12]", "web-02"));
  CHECK_FALSE(matches("web-*", "db-01"));
  CHECK(matches("exact", "exact"));
}

TEST_CASE("address ranges: in order, inside the subnet, clear of the gateway", "[clone][naming]") {
  CHECK(address_range("10.0.0.10/24", 3).value() == Names{"10.0.0.10/24", "10.0.0.11/24", "10.0.0.12/24"});
  CHECK(address_range("10.0.0.253/24", 2).value() == Names{"10.0.0.253/24", "10.0.0.254/24"});
  auto small = address_range("10.0.0.253/24", 3);
  REQUIRE_FALSE(small);
  CHECK(small.error().code() == Errc::invalid_argument);
  CHECK_THAT(small.error().message(), Catch::Contains("too small") && Catch::Contains("2 host addresses"));
  CHECK(address_range("10.0.0.250/30", 1).value() == Names{"10.0.0.250/30"});
  CHECK_FALSE(address_range("10.0.0.0/24", 1));    // network address
  CHECK_FALSE(address_range("10.0.0.255/24", 1));  // broadcast
  CHECK_FALSE(address_range("10.0.0.10", 1));
  CHECK_FALSE(address_range("10.0.0.10/31", 1));
  CHECK_THAT(address_range("10.0.0.1/24", 3, "10.0.0.2").error().message(), Catch::Contains("gateway"));
  CHECK(address_range("10.0.0.3/24", 3, "10.0.0.2"));
}

TEST_CASE("MACs: QEMU's prefix, none in use, none twice", "[clone][naming]") {
  std::set<std::string> used{"52:54:00:00:00:01"};
  auto macs = new_macs(500, used);
  REQUIRE(macs.size() == 500);
  std::set<std::string> distinct(macs.begin(), macs.end());
  CHECK(distinct.size() == 500);
  CHECK_FALSE(distinct.contains("52:54:00:00:00:01"));
  for (const auto& m : macs) {
    CHECK(m.starts_with("52:54:00:"));
    CHECK(m.size() == 17);
  }
}
