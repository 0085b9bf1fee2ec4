#include <catch2/catch.hpp>

#include "utsushi/guest/operation.h"

using namespace utsushi;
using namespace utsushi::guest;

namespace {

class Named : public Operation {
 public:
  Named(std::string name, bool on) : m_name(std::move(name)), m_on(on) {}
  std::string_view name() const override { return m_name; }
  std::string_view description() const override { return "a test operation"; }
  bool enabled_by_default() const override { return m_on; }
  Applicability applies(const GuestOs&) const override { return {}; }
  Result<void> run(Target&) const override { return {}; }

 private:
  std::string m_name;
  bool m_on;
};

OperationList table() {
  OperationList all;
  all.push_back(std::make_unique<Named>("alpha", true));
  all.push_back(std::make_unique<Named>("beta", false));
  all.push_back(std::make_unique<Named>("gamma", true));
  return all;
}

std::vector<std::string> names(const std::vector<const Operation*>& ops) {
  std::vector<std::string> out;
  for (const Operation* op : ops) {
    out.emplace_back(op->name());
  }
  return out;
}

}  // namespace

TEST_CASE("operation selection follows virt-sysprep's syntax, in table order", "[guest][operation]") {
  OperationList all = table();
  using V = std::vector<std::string>;
  CHECK(names(*select_operations(all, "")) == V{"alpha", "gamma"});
  CHECK(names(*select_operations(all, "defaults")) == V{"alpha", "gamma"});
  CHECK(names(*select_operations(all, "all")) == V{"alpha", "beta", "gamma"});
  CHECK(names(*select_operations(all, "gamma,beta")) == V{"beta", "gamma"});
  CHECK(names(*select_operations(all, "defaults,-alpha,beta")) == V{"beta", "gamma"});
  CHECK(names(*select_operations(all, "all,-beta")) == V{"alpha", "gamma"});
  auto bad = select_operations(all, "defaults,delta");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code() == Errc::invalid_argument);
  CHECK(bad.error().message().find("delta") != std::string::npos);
  CHECK(bad.error().message().find("alpha, beta, gamma") != std::string::npos);
  std::string listing = list_operations(all);
  CHECK(listing.find("alpha *") == 0);
  CHECK(listing.find("beta    ") != std::string::npos);
}

TEST_CASE("the change report's JSON", "[guest][report]") {
  Report r;
  r.dry_run = true;
  OperationReport op;
  op.name = "device-names";
  op.status = OperationStatus::planned;
  Change file;
  file.kind = ChangeKind::file;
  file.target = "/etc/fstab";
  file.before = "/dev/sda2 / ext4 defaults 0 1\n";
  file.after = "UUID=x / ext4 defaults 0 1\n";
  file.detail = "line 1: /dev/sda2 -> UUID=x";
  op.changes.push_back(file);
  Change cmd;
  cmd.kind = ChangeKind::command;
  cmd.target = "update-initramfs -u -k 6.1.0";
  op.changes.push_back(cmd);
  r.operations.push_back(op);
  OperationReport skipped;
  skipped.name = "boot-fallback";
  skipped.status = OperationStatus::skipped;
  skipped.reason = "BIOS guest";
  r.operations.push_back(skipped);
  nlohmann::json j = to_json(r);
  CHECK(j["dry-run"] == true);
  CHECK(j["operations"].size() == 2);
  CHECK(j["operations"][0]["status"] == "planned");
  CHECK(j["operations"][0]["changes"][0]["kind"] == "file");
  CHECK(j["operations"][0]["changes"][0]["path"] == "/etc/fstab");
  CHECK(j["operations"][0]["changes"][0]["before"] == "/dev/sda2 / ext4 defaults 0 1\n");
  CHECK(j["operations"][0]["changes"][1]["exit-code"].is_null());
  CHECK(j["operations"][1]["reason"] == "BIOS guest");
  CHECK_FALSE(j.contains("error"));
  CHECK(r.change_count() == 2);
  r.error = Error(Errc::io_error, "initramfs: update-initramfs failed");
  CHECK(to_json(r)["error"]["code"] == std::string(errc_name(Errc::io_error)));
  CHECK(summarise_content(std::string("\x7f" "ELF\x01\x00", 6)) == "<6 bytes>");
  CHECK(summarise_content("text\n") == "text\n");
}

TEST_CASE("version ordering as sort -V", "[guest][inspect]") {
  CHECK(version_less("6.1.0-9-amd64", "6.1.0-10-amd64"));
  CHECK(version_less("5.10.0-28-amd64", "6.1.0-9-amd64"));
  CHECK_FALSE(version_less("6.1.0-10-amd64", "6.1.0-9-amd64"));
  CHECK(version_less("4.18.0-80.el8.x86_64", "4.18.0-193.el8.x86_64"));
  CHECK_FALSE(version_less("1.0", "1.0"));
}
