#!/usr/bin/python3
"""p2v convert of physical-server-uefi (GPT, ESP, GRUB for x86_64-efi with the fallback
path): converted, it boots with OVMF on q35 with only a virtio disk and a virtio NIC
carrying the server's MAC, with its static address on that NIC; it still boots on AHCI;
its libvirt domain (OVMF with its own NVRAM copy) starts and reaches login.

The capture is given two traps first, in an overlay: fstab and grub.cfg name root as
/dev/sda3, and the guest has no grub-mkconfig/update-grub, so conversion must edit
grub.cfg in place (issue 11: "where it has only a config file")."""
import os
import subprocess
import unittest

from convert_common import (PrivateLibvirtd, boot_ahci, capture, changes, check_domain,
                            convert, fixture, host_bridge, log, sha256_file, start_and_check, workdir,
                            write_profile)
from harness.guestfs import Script


def add_traps(fx, image, trapped):
    """An overlay of the capture whose root is named /dev/sda3 and whose GRUB tools are gone."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, trapped], check=True)
    root_uuid = next(p["fs_uuid"] for p in fx["partition_table"]["partitions"] if p.get("mountpoint") == "/")
    s = Script()
    s.add_disk(trapped, fmt="qcow2", readonly=False)
    s.launch()
    s.cmd("mount /dev/sda3 /")
    s.cmd("mount /dev/sda2 /boot")
    s.cmd(f"sh \"sed -i 's|^UUID={root_uuid}|/dev/sda3|' /etc/fstab\"")
    s.cmd(f"sh \"sed -i 's|root=UUID={root_uuid}|root=/dev/sda3|' /boot/grub/grub.cfg\"")
    s.cmd("rm-f /usr/sbin/update-grub")
    s.cmd("rm-f /usr/sbin/grub-mkconfig")
    s.section("check")
    s.cmd("cat /etc/fstab")
    s.cmd("sh \"grep -c 'root=/dev/sda3' /boot/grub/grub.cfg\"")
    s.cmd("umount-all")
    return s.run()["check"]


class ConvertPhysicalServerUefi(unittest.TestCase):
    def test_converted_uefi_server_boots_on_virtio_with_its_network(self):
        fx = fixture("physical-server-uefi")
        with workdir() as d, PrivateLibvirtd() as lv, host_bridge() as bridge:
            image = capture(fx, d)
            trapped = os.path.join(d, "trapped.qcow2")
            check = add_traps(fx, image, trapped)
            self.assertIn("/dev/sda3", check)
            before = sha256_file(trapped)
            profile = write_profile(fx, os.path.join(d, "hw.json"))
            out = os.path.join(d, "out")
            _, res = convert(trapped, "--profile", profile, "--output-dir", out, "--connect", lv.uri, "--bridge",
                             bridge)
            self.assertEqual(res["firmware"], "uefi")
            self.assertEqual(res["os"]["boot-loader"]["mkconfig"], "")
            fstab = [c for c in changes(res, "device-names")["changes"] if c.get("path") == "/etc/fstab"]
            self.assertEqual(len(fstab), 1)
            self.assertIn("/dev/sda3 -> UUID=", fstab[0]["detail"])
            grub = changes(res, "boot-loader")
            self.assertTrue(any(c.get("path") == "/boot/grub/grub.cfg" and "root=/dev/sda3 -> root=UUID=" in c["detail"]
                                for c in grub["changes"]), grub)
            fallback = changes(res, "boot-fallback")
            self.assertTrue(any(c["kind"] == "check" and "BOOTX64.EFI" in c["subject"] for c in fallback["changes"]))
            self.assertEqual(sha256_file(trapped), before, "the source image was written")
            disk = res["disks"][0]["path"]
            name = res["domain"]["name"]
            check_domain(self, lv, name, cpus=2, memory_mib=1024, macs=[fx["network"]["mac"]], firmware="uefi",
                         disks=[disk])
            log("converted; booting on AHCI (OVMF)")
            boot_ahci(self, fx, disk, firmware="uefi")
            log("starting the libvirt domain (OVMF, its own NVRAM)")
            start_and_check(self, lv, fx, name, fx["network"]["mac"], "/dev/vda3")


if __name__ == "__main__":
    unittest.main(verbosity=2)
