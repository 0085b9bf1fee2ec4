#!/usr/bin/python3
"""p2v capture on the fixtures (issue 5), locally.

- data-disk and physical-server captured to qcow2 with --verify and --json: every used
  filesystem is mapped (no full copy except the unknown partition), qemu-img check is clean.
- One libguestfs launch reads both images: every file of every manifest matches.
- Each filesystem (ext4, XFS, FAT32, NTFS, the ext4 in the LVM LV) checks clean with its own
  checker through a read-only loop device; deleted-data markers are absent from the images;
  the unknown partition is copied byte for byte; the compressed capture equals the plain one.
- Bad input: a truncated image and a GPT damaged in both copies give clear errors and no
  output; a GPT damaged in one copy is captured with a warning.
"""
import hashlib
import os
import subprocess
import unittest

from p2v_common import (checked_volumes, count_marker, deleted_markers, fixture, fsck_partition, json_lines, p2v,
                        to_raw, workdir)
from harness import guestfs  # noqa: E402


class Capture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = workdir()
        d = cls.tmp.name
        cls.fx = {n: fixture(n) for n in ("data-disk", "physical-server")}
        cls.results = {}
        for name, fx in cls.fx.items():
            out = os.path.join(d, f"{name}.qcow2")
            proc = p2v("--json", "capture", fx["path"], "-o", out, "--verify")
            cls.results[name] = (out, json_lines(proc.stdout))
        cls.raw = {}
        for name, (out, _) in cls.results.items():
            cls.raw[name] = os.path.join(d, f"{name}.raw")
            to_raw(out, cls.raw[name])
        s = guestfs.Script()
        s.add_disk(cls.results["data-disk"][0], fmt="qcow2")
        s.add_disk(cls.results["physical-server"][0], fmt="qcow2")
        s.launch()
        s.cmd("vg-activate-all true")
        for entry in cls.fx["data-disk"]["manifests"]:
            dev = entry.get("lv_path") or f"/dev/sda{entry['partition']}"
            s.section(f"data-disk {dev}")
            s.cmd(f"mount-ro {dev} /")
            s.cmd("checksums-out sha256 / -")
            s.cmd("umount-all")
        for entry in cls.fx["physical-server"]["manifests"]:
            s.section("physical-server")
            s.cmd(f"mount-ro /dev/sdb{entry['partition']} /")
            s.cmd(f"checksums-out sha256 {entry['directory']} -")
            s.cmd("umount-all")
        cls.sums = s.run(timeout=600)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_json_result_and_maps(self):
        for name, (out, lines) in self.results.items():
            result = lines[-1]
            self.assertEqual(result["type"], "result")
            self.assertEqual(result["status"], "ok")
            disk = result["disks"][0]
            self.assertEqual(disk["verified-bytes"], disk["copied-bytes"])
            for v in disk["plan"]["volumes"]:
                if v["filesystem"] != "unknown":
                    self.assertFalse(v["full-copy"], f"{name} {v['name']}: {v.get('note')}")
            self.assertTrue(os.path.exists(os.path.join(os.path.dirname(out), f"{name}.qcow2.hardware.json")))
            check = subprocess.run(["qemu-img", "check", out], capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_manifests_match_through_libguestfs(self):
        for entry in self.fx["data-disk"]["manifests"]:
            dev = entry.get("lv_path") or f"/dev/sda{entry['partition']}"
            want = guestfs.read_manifest(entry["path"])
            got = guestfs.parse_sha256_lines(self.sums[f"data-disk {dev}"])
            self.assertEqual(got, want, dev)
        entry = self.fx["physical-server"]["manifests"][0]
        want = guestfs.read_manifest(entry["path"])
        got = guestfs.parse_sha256_lines(self.sums["physical-server"])
        self.assertGreater(len(want), 10)
        self.assertEqual(sorted(got.values()), sorted(want.values()))

    def test_filesystems_check_clean(self):
        for name in self.fx:
            for vol, start, size, fs in checked_volumes(self.fx[name]):
                with self.subTest(fixture=name, volume=vol, filesystem=fs):
                    rc, out = fsck_partition(self.raw[name], start, size, fs)
                    self.assertEqual(rc, 0, out[-2000:])

    def test_deleted_data_absent(self):
        for name in self.fx:
            for start, size, marker in deleted_markers(self.fx[name]):
                self.assertGreater(count_marker(self.fx[name]["path"], start, size, marker), 0, marker)
                self.assertEqual(count_marker(self.raw[name], start, size, marker), 0, marker)

    def test_unknown_partition_copied_exactly(self):
        for p in self.fx["data-disk"]["partition_table"]["partitions"]:
            if "content_sha256" in p:
                with open(self.raw["data-disk"], "rb") as f:
                    f.seek(p["start_bytes"])
                    digest = hashlib.sha256(f.read(p["size_bytes"])).hexdigest()
                self.assertEqual(digest, p["content_sha256"])

    def test_compressed_capture_is_identical(self):
        out = os.path.join(self.tmp.name, "c.qcow2")
        p2v("capture", self.fx["data-disk"]["path"], "-o", out, "-c", "--no-profile")
        cmp = subprocess.run(["qemu-img", "compare", out, self.results["data-disk"][0]], capture_output=True, text=True)
        self.assertEqual(cmp.returncode, 0, cmp.stdout)
        self.assertLess(os.path.getsize(out), os.path.getsize(self.results["data-disk"][0]))

    def test_bad_input(self):
        d = self.tmp.name
        src = self.fx["data-disk"]["path"]
        size = self.fx["data-disk"]["virtual_size"]
        # Only the tables matter here: a sparse copy of the first and last MiB.
        def table_copy(path):
            subprocess.run(["truncate", "-s", str(size), path], check=True)
            for off in (0, size - (1 << 20)):
                subprocess.run(["dd", f"if={src}", f"of={path}", "bs=1M", f"skip={off >> 20}", f"seek={off >> 20}",
                                "count=1", "conv=notrunc", "status=none"], check=True)

        def poke(path, offset):
            with open(path, "r+b") as f:
                f.seek(offset)
                f.write(b"XXXX")

        trunc = os.path.join(d, "trunc.raw")
        table_copy(trunc)
        os.truncate(trunc, 600 << 20)
        proc = p2v("capture", trunc, "-o", os.path.join(d, "trunc.qcow2"), check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("p2v: error:", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "trunc.qcow2")))

        both = os.path.join(d, "gpt-both.raw")
        table_copy(both)
        poke(both, 512 + 8)
        poke(both, size - 512 + 8)
        proc = p2v("capture", both, "-o", os.path.join(d, "both.qcow2"), check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("GPT is corrupt", proc.stderr)

        one = os.path.join(d, "gpt-one.raw")
        table_copy(one)
        poke(one, 512 + 8)
        proc = p2v("capture", one, "-o", os.path.join(d, "one.qcow2"), "--no-profile", check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("primary GPT header is unusable", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
