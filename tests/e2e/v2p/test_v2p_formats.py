#!/usr/bin/python3
"""v2p restore reads every image format imagefmt reads (issue 12): the same disk as a raw
image, a qcow2 overlay over a qcow2 base (a backing chain whose top holds a change), a VMDK
and an OVA, each restored onto a larger target (--grow none: a resize writes timestamps); every result equals the restore of the raw
image (with the overlay's change), byte for byte.
"""
import os
import subprocess
import unittest

from v2p_common import UTSUSHI_IMG, WorkdirCase, fixture, result, sha256_file, sparse_file, v2p

MiB = 1 << 20


class Formats(WorkdirCase):
    def restore(self, image, name):
        target = sparse_file(os.path.join(self.dir, name), 1536 * MiB)
        r = result(v2p("--json", "restore", "--no-prepare", "--grow", "none", "--state-dir", self.state, image, target))
        self.assertGreater(r["bytes-written"], 0)
        return target

    def test_chain_vmdk_ova(self):
        data = fixture("data-disk")["path"]
        d = self.dir
        base = os.path.join(d, "base.qcow2")
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", data, base], check=True)
        top = os.path.join(d, "top.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", top], check=True)
        # A change only the top holds: the unknown partition p7's first MiB.
        p7 = [p for p in fixture("data-disk")["partition_table"]["partitions"] if p["number"] == 7][0]
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a {p7['start_bytes']} {MiB}", top], check=True,
                       capture_output=True)
        expected_raw = os.path.join(d, "expected.raw")
        subprocess.run(["qemu-img", "convert", "-O", "raw", top, expected_raw], check=True)
        vmdk = os.path.join(d, "disk.vmdk")
        subprocess.run(["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", data, vmdk], check=True)
        ova = os.path.join(d, "disk.ova")
        subprocess.run([UTSUSHI_IMG, "convert", "-O", "ova", data, ova], check=True, capture_output=True)

        want_chain = sha256_file(self.restore(expected_raw, "from-raw-with-change.raw"))
        self.assertEqual(sha256_file(self.restore(top, "from-chain.raw")), want_chain)
        want = sha256_file(self.restore(data, "from-raw.raw"))
        self.assertNotEqual(want, want_chain)  # the overlay's change is visible
        self.assertEqual(sha256_file(self.restore(vmdk, "from-vmdk.raw")), want)
        self.assertEqual(sha256_file(self.restore(ova, "from-ova.raw")), want)


if __name__ == "__main__":
    unittest.main(verbosity=2)
