#!/usr/bin/python3
"""The captured physical-server image still boots with an AHCI disk to "login:" (issue 5)."""
import os
import sys
import time
import unittest

from p2v_common import fixture, p2v, workdir
from harness.qemu import Machine  # noqa: E402

BOOT_TIMEOUT = 300


class CapturedBoots(unittest.TestCase):
    def test_captured_physical_server_boots_from_ahci(self):
        fx = fixture("physical-server")
        with workdir() as d:
            image = os.path.join(d, "server.qcow2")
            p2v("capture", fx["path"], "-o", image)
            t0 = time.monotonic()
            m = Machine("p2v-captured", memory_mib=1024, smp=2, machine=fx["qemu"]["machine"], firmware="bios")
            m.add_disk(image, fmt="qcow2", bus="ahci")
            nic = fx["qemu"]["nic"]
            m.add_nic(model=nic["model"], mac=nic["mac"], pci_slot=nic["pci_slot"])
            with m:
                m.start()
                m.wait_for(fx["markers"]["login"], BOOT_TIMEOUT)
            print(f"captured image: login prompt after {time.monotonic() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
