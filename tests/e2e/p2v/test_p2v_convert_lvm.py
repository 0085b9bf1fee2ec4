#!/usr/bin/python3
"""p2v convert of physical-server-lvm (issue 11's traps: root on an LVM LV with XFS, fstab
naming /dev/sda1 for /boot, resume= and root= by /dev/mapper names, the NIC bound by name
(ens5) through systemd-networkd, a host-only dracut initramfs with AHCI drivers only, GRUB
from grub-pc with update-grub): converted, it boots on q35 with only a virtio disk and a
virtio NIC carrying the server's MAC, with its address on ens5 and root on the LV; it
still boots on AHCI with its e1000e; its libvirt domain starts and reaches login."""
import os
import unittest

from convert_common import (PrivateLibvirtd, boot_ahci, capture, changes, check_domain,
                            convert, fixture, host_bridge, log, sha256_file, start_and_check, workdir,
                            write_profile)


class ConvertPhysicalServerLvm(unittest.TestCase):
    def test_converted_lvm_server_boots_on_virtio_with_its_network(self):
        fx = fixture("physical-server-lvm")
        with workdir() as d, PrivateLibvirtd() as lv, host_bridge() as bridge:
            image = capture(fx, d)
            before = sha256_file(image)
            profile = write_profile(fx, os.path.join(d, "hw.json"))
            out = os.path.join(d, "out")
            _, res = convert(image, "--profile", profile, "--output-dir", out, "--connect", lv.uri, "--bridge", bridge)
            self.assertEqual(res["os"]["initramfs-tool"], "dracut")
            self.assertEqual(res["os"]["boot-loader"]["mkconfig"], "update-grub")
            fstab = [c for c in changes(res, "device-names")["changes"] if c.get("path") == "/etc/fstab"]
            self.assertEqual(len(fstab), 1)
            self.assertIn("/dev/sda1 -> UUID=", fstab[0]["detail"])
            self.assertNotIn("/dev/mapper", fstab[0]["detail"], "LVM names are kept")
            initramfs = changes(res, "initramfs")
            self.assertTrue(any(c["kind"] == "command" and c["command"].startswith("dracut") and c["exit-code"] == 0
                                for c in initramfs["changes"]), initramfs)
            self.assertTrue(any(c["kind"] == "check" for c in initramfs["changes"]))
            nic = changes(res, "nic-names")
            self.assertTrue(any(c.get("path") == "/etc/systemd/network/05-utsushi-ens5.link" for c in nic["changes"]))
            disk = res["disks"][0]["path"]
            name = res["domain"]["name"]
            check_domain(self, lv, name, cpus=2, memory_mib=1024, macs=[fx["network"]["mac"]], firmware="bios",
                         disks=[disk])
            self.assertEqual(sha256_file(image), before, "the captured image was written")
            log("converted; booting on AHCI")
            boot_ahci(self, fx, disk)
            log("starting the libvirt domain")
            start_and_check(self, lv, fx, name, fx["network"]["mac"], fx["root"]["device"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
