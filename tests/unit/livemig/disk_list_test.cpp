// disk_session.h's disk list frame (disk_list.cpp): round trip, and every
// field of a hostile list checked: missing, extra, ill-typed, oversize,
// negative or overflowing values refused as corruption.
#include <catch2/catch.hpp>
#include <fmt/core.h>

#include "utsushi/livemig/disk_session.h"

using namespace utsushi;
using namespace utsushi::livemig;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

const std::string k_hash = "0123456789abcdef0123456789abcdef";

json good_disk() {
  return {{"node", "libvirt-1-format"},
          {"qdev", "/machine/peripheral/virtio-disk0/virtio-backend"},
          {"size", 3221225472u},
          {"file", "/var/lib/vm/g.qcow2"},
          {"format", "qcow2"},
          {"backing", "/var/lib/golden.qcow2"},
          {"backing_format", "qcow2"},
          {"backing_hash", k_hash},
          {"allocated", 314572800u}};
}

void check_refused(const json& list, const std::string& why) {
  INFO(why << ": " << list.dump());
  auto r = parse_disk_list(list.dump(), EmptyList::allowed);
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == Errc::corruption);
}

}  // namespace

TEST_CASE("livemig disk list: round trip, an empty list only where allowed", "[livemig][disk_list]") {
  std::vector<SessionDisk> disks = {
      {"#block123", "/machine/peripheral-anon/device[0]/virtio-backend", 1073741824, "/a.qcow2", "qcow2", "/b.raw",
       "raw", k_hash, 327680},
      {"d1", "", 512, "/c.raw", "raw", "", "", "", 0}};
  auto back = parse_disks_frame(disks_frame_text(disks));
  REQUIRE(back);
  CHECK(*back == disks);
  CHECK_FALSE(parse_disks_frame("[]"));
  auto empty = parse_disk_list("[]", EmptyList::allowed);
  REQUIRE(empty);
  CHECK(empty->empty());
}

TEST_CASE("livemig disk list: hostile lists refused field by field", "[livemig][disk_list]") {
  for (const char* text : {"", "{}", "[1]", "nope", "[[]]", "null"}) {
    auto r = parse_disk_list(text, EmptyList::allowed);
    INFO(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::corruption);
  }
  for (const char* key :
       {"node", "qdev", "size", "file", "format", "backing", "backing_format", "backing_hash", "allocated"}) {
    json d = good_disk();
    d.erase(key);
    check_refused(json::array({d}), std::string("missing ") + key);
    d = good_disk();
    d[key] = key == std::string("size") || key == std::string("allocated") ? json("12") : json(5);
    check_refused(json::array({d}), std::string("ill-typed ") + key);
  }
  json extra = good_disk();
  extra["evil"] = true;
  check_refused(json::array({extra}), "an unknown field");
  // Sizes: negative, zero, unaligned, above the limit, overflowing 64 bits, fractional.
  for (const char* size : {"-512", "0", "513", "2305843009213693952", "18446744073709551616", "1e30", "512.5"}) {
    json d = good_disk();
    d["size"] = json::parse(size);
    check_refused(json::array({d}), std::string("size ") + size);
  }
  // Allocated sizes: negative, above the limit, overflowing 64 bits, fractional (0 is QEMU not saying).
  for (const char* allocated : {"-1", "1152921504606846977", "18446744073709551616", "1e30", "0.5"}) {
    json d = good_disk();
    d["allocated"] = json::parse(allocated);
    check_refused(json::array({d}), std::string("allocated ") + allocated);
  }
  // Names and paths: oversize, control characters, relative.
  std::vector<std::pair<const char*, std::string>> bad_text = {
      {"node", ""},
      {"node", std::string(k_max_disk_name + 1, 'n')},
      {"qdev", std::string(k_max_disk_name + 1, 'q')},
      {"node", "a\nb"},
      {"file", "relative.qcow2"},
      {"file", std::string(k_max_disk_path + 1, '/')},
      {"file", std::string("/a\0b", 4)},
      {"format", "vmdk"},
      {"backing", "golden.qcow2"},
      {"backing", "/g\x1b[2J"},
      {"backing_format", "vmdk"},
      {"backing_hash", "0123"},
      {"backing_hash", "0123456789ABCDEF0123456789ABCDEF"},
      {"backing_hash", k_hash + "00"},
  };
  for (const auto& [key, value] : bad_text) {
    json d = good_disk();
    d[key] = value;
    check_refused(json::array({d}), std::string(key) + "=" + value);
  }
  // Backing fields all set or all empty.
  for (const char* key : {"backing", "backing_format", "backing_hash"}) {
    json d = good_disk();
    d[key] = "";
    check_refused(json::array({d}), std::string("only ") + key + " empty");
  }
  json none = good_disk();
  none["backing"] = none["backing_format"] = none["backing_hash"] = "";
  CHECK(parse_disk_list(json::array({none}).dump(), EmptyList::refused));
  // Duplicates and too many disks.
  check_refused(json::array({good_disk(), good_disk()}), "the same disk twice");
  json many = json::array();
  for (std::size_t i = 0; i <= k_max_session_disks; ++i) {
    json d = good_disk();
    d["node"] = fmt::format("n{}", i);
    d["file"] = fmt::format("/f{}", i);
    many.push_back(d);
  }
  check_refused(many, "too many disks");
  many.erase(many.size() - 1);
  CHECK(parse_disk_list(many.dump(), EmptyList::refused));
}
