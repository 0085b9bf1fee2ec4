#!/usr/bin/python3
"""p2v convert of physical-server (BIOS, MBR, ifupdown bound to ens3, an initramfs with
AHCI drivers only): the converted disk boots on q35 with only a virtio disk and a virtio
NIC carrying the server's MAC, the static address is up on that NIC (its old name pinned
to the MAC), root is /dev/vda2, the data is intact; it still boots on AHCI; the domain
defined on a private libvirtd has the profile's CPUs, memory and MAC and virtio devices,
and started it reaches login on its serial console; the captured image is unchanged
(issue 11)."""
import os
import subprocess
import unittest

from convert_common import (PrivateLibvirtd, boot_ahci, capture, changes, check_domain,
                            convert, fixture, host_bridge, log, sha256_file, start_and_check, workdir,
                            write_profile)


class ConvertPhysicalServer(unittest.TestCase):
    def test_converted_server_boots_on_virtio_with_its_network(self):
        fx = fixture("physical-server")
        with workdir() as d, PrivateLibvirtd() as lv, host_bridge() as bridge:
            image = capture(fx, d)
            before = sha256_file(image)
            profile = write_profile(fx, os.path.join(d, "hw.json"))
            out = os.path.join(d, "out")
            _, res = convert(image, "--profile", profile, "--output-dir", out, "--connect", lv.uri, "--bridge", bridge)
            self.assertEqual(res["os"]["distro"], "debian")
            self.assertEqual(res["firmware"], "bios")
            self.assertEqual([n["mac"] for n in res["nics"]], [fx["network"]["mac"]])
            disk = res["disks"][0]["path"]
            name = res["domain"]["name"]
            self.assertEqual(name, fx["hostname"])
            self.assertTrue(res["domain"]["defined"])
            self.assertFalse(res["domain"]["started"])
            self.assertRegex(res["domain"]["uuid"], r"^[0-9a-f-]{36}$")
            check_domain(self, lv, name, cpus=2, memory_mib=1024, macs=[fx["network"]["mac"]], firmware="bios",
                         disks=[disk])
            self.assertEqual(os.path.dirname(disk), out)
            info = subprocess.run(["qemu-img", "info", "--output=json", disk], capture_output=True, text=True,
                                  check=True).stdout
            self.assertIn(os.path.abspath(image), info, "the converted disk is an overlay over the capture")
            # The report: what changed, and the checks made on the result.
            initramfs = changes(res, "initramfs")
            self.assertEqual(initramfs["status"], "applied")
            kinds = [c["kind"] for c in initramfs["changes"]]
            self.assertIn("command", kinds)
            self.assertIn("check", kinds)
            nic = changes(res, "nic-names")
            self.assertTrue(any(c.get("path") == "/etc/systemd/network/05-utsushi-ens3.link" for c in nic["changes"]))
            self.assertEqual(sha256_file(image), before, "the captured image was written")
            log("converted; booting on AHCI")
            boot_ahci(self, fx, disk)
            log("starting the libvirt domain")
            start_and_check(self, lv, fx, name, fx["network"]["mac"], "/dev/vda2")
            self.assertEqual(sha256_file(image), before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
