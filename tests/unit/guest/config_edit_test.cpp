#include <catch2/catch.hpp>

#include "utsushi/guest/config_edit.h"

using namespace utsushi::guest;

namespace {

// sda2 -> UUID=root, sda3 -> UUID=swap, sdb1 -> UUID=data; everything else kept.
std::optional<std::string> resolver(std::string_view d) {
  if (d == "/dev/sda2") {
    return "UUID=1111-root";
  }
  if (d == "/dev/sda3") {
    return "UUID=2222-swap";
  }
  if (d == "/dev/sdb1") {
    return "UUID=3333-data";
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("fstab: bus device paths become UUID=, the rest is kept byte for byte", "[guest][fstab]") {
  const std::string in =
      "# /etc/fstab: static file system information.\n"
      "/dev/sda2\t/\text4\terrors=remount-ro 0 1\n"
      "UUID=abcd /boot ext4 defaults 0 2\n"
      "/dev/mapper/vg0-home  /home  xfs  defaults  0  2\n"
      "/dev/sda3 none swap sw 0 0\n"
      "\n"
      "proc /proc proc defaults 0 0\n";
  Edited out = rewrite_fstab(in, resolver);
  CHECK(out.text ==
        "# /etc/fstab: static file system information.\n"
        "UUID=1111-root\t/\text4\terrors=remount-ro 0 1\n"
        "UUID=abcd /boot ext4 defaults 0 2\n"
        "/dev/mapper/vg0-home  /home  xfs  defaults  0  2\n"
        "UUID=2222-swap none swap sw 0 0\n"
        "\n"
        "proc /proc proc defaults 0 0\n");
  REQUIRE(out.edits.size() == 2);
  CHECK(out.edits[0] == "line 2: /dev/sda2 -> UUID=1111-root");
  CHECK(rewrite_fstab(out.text, resolver).edits.empty());  // idempotent
}

TEST_CASE("fstab: a file without a final newline keeps it that way", "[guest][fstab]") {
  Edited out = rewrite_fstab("/dev/sda2 / ext4 defaults 0 1", resolver);
  CHECK(out.text == "UUID=1111-root / ext4 defaults 0 1");
}

TEST_CASE("fstab: parse and add an option to chosen entries", "[guest][fstab]") {
  const std::string in = "UUID=x / ext4 defaults 0 1\n/dev/sdc1 /data ext4 noatime 0 2\nLABEL=b /backup xfs\n";
  auto entries = parse_fstab(in);
  REQUIRE(entries.size() == 3);
  CHECK(entries[1].spec == "/dev/sdc1");
  CHECK(entries[1].options == "noatime");
  CHECK(entries[2].options == "defaults");
  Edited out = add_fstab_option(in, [](const FstabEntry& e) { return e.file != "/"; }, "nofail");
  CHECK(out.text == "UUID=x / ext4 defaults 0 1\n/dev/sdc1 /data ext4 noatime,nofail 0 2\nLABEL=b /backup xfs\tdefaults,nofail\n");
  CHECK(out.edits.size() == 2);
  CHECK(add_fstab_option(out.text, [](const FstabEntry&) { return true; }, "nofail").edits.size() == 1);
}

TEST_CASE("crypttab: the encrypted device (second field) is rewritten", "[guest][crypttab]") {
  Edited out = rewrite_crypttab("sdb1_crypt /dev/sdb1 none luks,discard\n# comment /dev/sdb1\n", resolver);
  CHECK(out.text == "sdb1_crypt UUID=3333-data none luks,discard\n# comment /dev/sdb1\n");
}

TEST_CASE("cmdline: root= and resume= resolved, console added once per device", "[guest][cmdline]") {
  std::vector<std::string> edits;
  std::string out = rewrite_cmdline("ro root=/dev/sda2 resume=/dev/sda3 quiet console=tty0", resolver,
                                    {"console=tty0", "console=ttyS0,115200n8"}, edits);
  CHECK(out == "ro root=UUID=1111-root resume=UUID=2222-swap quiet console=tty0 console=ttyS0,115200n8");
  CHECK(edits.size() == 3);
  edits.clear();
  CHECK(rewrite_cmdline("root=/dev/mapper/vg-root console=ttyS0,9600", resolver, {"console=ttyS0,115200n8"}, edits) ==
        "root=/dev/mapper/vg-root console=ttyS0,9600");
  CHECK(edits.empty());
  CHECK(cmdline_value("ro root=UUID=x quiet", "root") == "UUID=x");
  CHECK(cmdline_value("ro quiet", "root").empty());
}

TEST_CASE("default grub: cmdline variables edited, console goes to GRUB_CMDLINE_LINUX", "[guest][grub]") {
  const std::string in =
      "GRUB_DEFAULT=0\n"
      "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet resume=/dev/sda3\"\n"
      "GRUB_CMDLINE_LINUX=''\n"
      "GRUB_DISABLE_LINUX_UUID=true\n";
  Edited out = rewrite_default_grub(in, resolver, {"console=ttyS0,115200n8"});
  CHECK(out.text ==
        "GRUB_DEFAULT=0\n"
        "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet resume=UUID=2222-swap\"\n"
        "GRUB_CMDLINE_LINUX='console=ttyS0,115200n8'\n"
        "GRUB_DISABLE_LINUX_UUID=false\n");
  CHECK(out.edits.size() == 3);
  CHECK(rewrite_default_grub(out.text, resolver, {"console=ttyS0,115200n8"}).edits.empty());
}

TEST_CASE("default grub: a missing GRUB_CMDLINE_LINUX is added", "[guest][grub]") {
  Edited out = rewrite_default_grub("GRUB_TIMEOUT=5\n", resolver, {"console=ttyS0,115200n8"});
  CHECK(out.text == "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX=\"console=ttyS0,115200n8\"\n");
}

TEST_CASE("grub.cfg edited in place: every kernel line, nothing else", "[guest][grub]") {
  const std::string in =
      "menuentry 'Debian' {\n"
      "\tsearch --no-floppy --fs-uuid --set=root 72b1\n"
      "\tlinux /vmlinuz-6.1 root=/dev/sda2 ro quiet\n"
      "\tinitrd /initrd.img-6.1\n"
      "}\n"
      "menuentry 'old' {\n"
      "  linux16 /vmlinuz-5.10 root=/dev/sda2 ro single\n"
      "}\n";
  Edited out = rewrite_grub_cfg(in, resolver, {"console=ttyS0,115200n8"});
  CHECK(out.text ==
        "menuentry 'Debian' {\n"
        "\tsearch --no-floppy --fs-uuid --set=root 72b1\n"
        "\tlinux /vmlinuz-6.1 root=UUID=1111-root ro quiet console=ttyS0,115200n8\n"
        "\tinitrd /initrd.img-6.1\n"
        "}\n"
        "menuentry 'old' {\n"
        "  linux16 /vmlinuz-5.10 root=UUID=1111-root ro single console=ttyS0,115200n8\n"
        "}\n");
  auto lines = grub_cfg_cmdlines(out.text);
  REQUIRE(lines.size() == 2);
  CHECK(cmdline_value(lines[1], "root") == "UUID=1111-root");
}

TEST_CASE("BLS entry and initramfs-tools resume", "[guest][grub]") {
  Edited bls = rewrite_bls_entry("title RHEL\nlinux /vmlinuz\noptions root=/dev/sda2 ro\n", resolver, {});
  CHECK(bls.text == "title RHEL\nlinux /vmlinuz\noptions root=UUID=1111-root ro\n");
  Edited resume = rewrite_resume_conf("RESUME=/dev/sda3\n", resolver);
  CHECK(resume.text == "RESUME=UUID=2222-swap\n");
  CHECK(rewrite_resume_conf("RESUME=UUID=abc\n", resolver).edits.empty());
  CHECK(rewrite_resume_conf("RESUME=\"/dev/sda3\"\n", resolver).text == "RESUME=\"UUID=2222-swap\"\n");
}
