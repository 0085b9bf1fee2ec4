#!/usr/bin/python3
"""v2p restore refuses before writing, and resumes after kill -9 (issue 12).

- A mounted target is refused (exit 4, "mounted"); a target carrying a partition table needs
  --force (exit 4 without it).
- A target too small for the image is refused naming the size it needs; the target's
  checksum is unchanged; a target of exactly that size takes the image.
- A corrupt qcow2 (an L2 table pointer that is not cluster-aligned) is refused before
  anything is written (exit 1, "corrupt"); the target's checksum is unchanged.
- kill -9 in the middle of a restore, then the same command again: it resumes (the windows
  written before are skipped) and the disk equals an uninterrupted restore, byte for byte.
"""
import glob
import json
import os
import re
import signal
import struct
import subprocess
import time
import unittest

from v2p_common import WorkdirCase, V2P, fixture, result, sha256_file, sparse_file, v2p, workdir

MiB = 1 << 20


def random_file(path, size):
    with open(path, "wb") as f:
        for i in range(size // MiB):
            f.write(os.urandom(MiB))
    return path


class Refusals(WorkdirCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data = fixture("data-disk")["path"]

    def test_mounted_target(self):
        img = sparse_file(os.path.join(self.dir, "mounted.raw"), 1536 * MiB)
        subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
        dev = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True, check=True).stdout.strip()
        mnt = os.path.join(self.dir, "mnt")
        os.makedirs(mnt, exist_ok=True)
        subprocess.run(["mount", dev, mnt], check=True)
        try:
            proc = v2p("restore", "--no-prepare", "--state-dir", self.state, self.data, dev, check=False)
            self.assertEqual(proc.returncode, 4, proc.stderr)
            self.assertIn("mounted", proc.stderr)
        finally:
            subprocess.run(["umount", mnt], check=True)
            subprocess.run(["losetup", "-d", dev], check=True)

    def test_partition_table_needs_force(self):
        target = sparse_file(os.path.join(self.dir, "table.raw"), 1536 * MiB)
        subprocess.run(["sfdisk", "-q", target], input="label: dos\nstart=2048, size=8192\n", text=True, check=True)
        proc = v2p("restore", "--no-prepare", "--state-dir", self.state, self.data, target, check=False)
        self.assertEqual(proc.returncode, 4, proc.stderr)
        self.assertIn("--force", proc.stderr)
        v2p("restore", "--no-prepare", "--force", "--state-dir", self.state, self.data, target)

    def test_too_small(self):
        target = random_file(os.path.join(self.dir, "small.raw"), 640 * MiB)
        before = sha256_file(target)
        proc = v2p("restore", "--no-prepare", "--state-dir", self.state, self.data, target, check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        m = re.search(r"needs at least (\d+) bytes", proc.stderr)
        self.assertTrue(m, proc.stderr)
        self.assertEqual(sha256_file(target), before)
        needed = int(m.group(1))
        self.assertGreater(needed, 640 * MiB)
        fits = sparse_file(os.path.join(self.dir, "fits.raw"), needed)
        v2p("restore", "--no-prepare", "--state-dir", self.state, self.data, fits)

    def test_corrupt_image(self):
        image = os.path.join(self.dir, "corrupt.qcow2")
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", self.data, image], check=True)
        with open(image, "r+b") as f:
            header = f.read(48)
            l1_offset = struct.unpack(">Q", header[40:48])[0]
            f.seek(l1_offset)
            f.write(struct.pack(">Q", (1 << 63) | 0x12345))  # an L2 table that is not cluster-aligned
        target = random_file(os.path.join(self.dir, "corrupt-target.raw"), 1200 * MiB)
        before = sha256_file(target)
        proc = v2p("restore", "--no-prepare", "--state-dir", self.state, image, target, check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("corrupt", proc.stderr)
        self.assertEqual(sha256_file(target), before)


class Resume(unittest.TestCase):
    def test_kill9_resumes_to_the_same_disk(self):
        golden = fixture("golden-guest")
        with workdir() as d:
            state = os.path.join(d, "state")
            size = golden.get("virtual_size") or 3 * 1024 * MiB
            ref = sparse_file(os.path.join(d, "ref.raw"), size)
            v2p("restore", "--no-prepare", "--state-dir", state, golden["path"], ref)
            target = sparse_file(os.path.join(d, "target.raw"), size)
            args = [V2P, "restore", "--no-prepare", "--state-dir", state, golden["path"], target]
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            windows = 0
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and proc.poll() is None and windows < 3:
                for j in glob.glob(os.path.join(state, "target-*.json")):
                    try:
                        with open(j) as fh:
                            windows = len(json.load(fh).get("windows", []))
                    except (OSError, ValueError):
                        pass
                time.sleep(0.02)
            self.assertIsNone(proc.poll(), "the restore ended before it could be interrupted")
            self.assertGreaterEqual(windows, 3)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            r = result(v2p("--json", "restore", "--no-prepare", "--state-dir", state, golden["path"], target))
            self.assertTrue(r["resumed"])
            self.assertGreaterEqual(r["windows-resumed"], 3)
            self.assertEqual(sha256_file(target), sha256_file(ref))
            self.assertEqual(glob.glob(os.path.join(state, "target-*")), [])  # finished: journal gone


if __name__ == "__main__":
    unittest.main(verbosity=2)
