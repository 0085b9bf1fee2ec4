#!/usr/bin/python3
"""v2p restore without boot preparation (issue 12): every filesystem v2p resizes, on
data-disk (ext4, XFS, FAT32, NTFS, swap, LVM, an unknown partition), with the host's tools.

- Larger target, XFS grown (--grow 2): the partitions after it move to the end by whole MiB;
  every manifest matches, XFS reports the new size, the unknown partition is byte-identical,
  the GPT is valid (sfdisk) with its backup at the new end.
- Larger target, swap grown (--grow 5): re-made with its UUID and label.
- Smaller target, NTFS shrunk (--grow 4); smaller target, XFS re-created (--grow 2) on a disk
  whose XFS holds owners, modes, hard links, xattrs and an ACL: all kept, with its UUID
  and label.
- Free space never shows the target's old data: the target starts full of a marker, and no
  marker is found inside any partition afterwards.
"""
import hashlib
import os
import subprocess
import unittest

from v2p_common import (WorkdirCase, blkid, fixture, loop, manifest_ok, mounted, result, sfdisk_partitions, sparse_file, v2p,
                        workdir)

MiB = 1 << 20
MARK = b"V2P-OLD-DISK-DATA"


def fill_with_marker(path, size):
    block = (MARK * (MiB // len(MARK) + 1))[:MiB]
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(block)


def marker_count(path, start, size):
    n = 0
    with open(path, "rb") as f:
        f.seek(start)
        left = size
        while left:
            chunk = f.read(min(left, 8 * MiB))
            if not chunk:
                break
            n += chunk.count(MARK)
            left -= len(chunk)
    return n


class Resize(WorkdirCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fx = fixture("data-disk")

    def restore(self, target, *args):
        proc = v2p("--json", "restore", "--no-prepare", "--state-dir", self.state, *args, self.fx["path"], target)
        return result(proc)

    def check_manifests(self, target, parts):
        for m in self.fx["manifests"]:
            if "lv_path" in m:
                continue  # the LV: host has no device-mapper; its bytes are checked with the PV's
            p = parts[m["partition"]]
            start, size = int(p["start"]) * 512, int(p["size"]) * 512
            with loop(target, start, size) as dev, mounted(dev, m["filesystem"], "ro,nouuid" if m["filesystem"] == "xfs" else "ro") as root:
                ok, out = manifest_ok(root, m["path"])
                self.assertTrue(ok, f"p{m['partition']} ({m['filesystem']}): {out[:2000]}")

    def test_larger_xfs_grown(self):
        target = os.path.join(self.dir, "big.raw")
        size = 2 * 1024 * MiB
        fill_with_marker(target, size)
        r = self.restore(target, "--grow", "2", "--verify")
        self.assertEqual(r["layout"]["resized-partition"], 2)
        self.assertGreater(r["verified-bytes"], 0)
        parts, table = sfdisk_partitions(target)
        self.assertEqual(table["lastlba"], size // 512 - 34)
        src = {p["number"]: p for p in self.fx["partition_table"]["partitions"]}
        for n in (3, 4, 5, 6, 7):  # moved by the same whole number of MiB, same size
            shift = int(parts[n]["start"]) * 512 - src[n]["start_bytes"]
            self.assertEqual(shift % MiB, 0)
            self.assertGreater(shift, 0)
            self.assertEqual(int(parts[n]["size"]) * 512, src[n]["size_bytes"])
        self.check_manifests(target, parts)
        grown = int(parts[2]["size"]) * 512
        with loop(target, int(parts[2]["start"]) * 512, grown) as dev, mounted(dev, "xfs", "ro,nouuid") as root:
            st = os.statvfs(root)
            self.assertGreater(st.f_blocks * st.f_frsize, grown * 0.9)
        with open(target, "rb") as f:  # the unknown partition, byte for byte
            f.seek(int(parts[7]["start"]) * 512)
            self.assertEqual(hashlib.sha256(f.read(src[7]["size_bytes"])).hexdigest(), src[7]["content_sha256"])
        for n, p in parts.items():
            self.assertEqual(marker_count(target, int(p["start"]) * 512, int(p["size"]) * 512), 0, f"old data in p{n}")

    def test_larger_swap_remade(self):
        target = sparse_file(os.path.join(self.dir, "swap.raw"), 1536 * MiB)
        r = self.restore(target, "--grow", "5")
        self.assertEqual([f["action"] for f in r["filesystems"]], ["remake-swap"])
        parts, _ = sfdisk_partitions(target)
        src = [p for p in self.fx["partition_table"]["partitions"] if p["number"] == 5][0]
        with loop(target, int(parts[5]["start"]) * 512, int(parts[5]["size"]) * 512) as dev:
            tags = blkid(dev)
        self.assertEqual(tags.get("TYPE"), "swap")
        self.assertEqual(tags.get("UUID"), src["fs_uuid"])
        self.assertEqual(tags.get("LABEL"), src["label"])
        self.assertGreater(int(parts[5]["size"]) * 512, src["size_bytes"])

    def test_smaller_ntfs_shrunk(self):
        target = sparse_file(os.path.join(self.dir, "ntfs.raw"), 1040 * MiB)
        r = self.restore(target, "--grow", "4")
        self.assertEqual([(f["partition"], f["action"]) for f in r["filesystems"]], [(4, "shrink")])
        parts, _ = sfdisk_partitions(target)
        self.assertLess(int(parts[4]["size"]) * 512, 128 * MiB)
        self.check_manifests(target, parts)


class XfsRecreate(unittest.TestCase):
    """XFS cannot shrink: re-created at the new size, its files copied with their metadata."""

    def test_metadata_kept(self):
        with workdir() as d:
            image = sparse_file(os.path.join(d, "xfs.raw"), 1024 * MiB)
            subprocess.run(["sfdisk", "-q", image], input="label: gpt\nstart=2048, size=1331200\n", text=True,
                           check=True)
            with loop(image, MiB, 1331200 * 512, read_only=False) as dev:
                subprocess.run(["mkfs.xfs", "-q", "-L", "v2p-xfs", dev], check=True)
                uuid = blkid(dev)["UUID"]
                with mounted(dev, "xfs", "rw") as root:
                    os.makedirs(os.path.join(root, "dir"))
                    f = os.path.join(root, "dir", "file")
                    with open(f, "w") as fh:
                        fh.write("content\n")
                    os.chown(f, 1234, 5678)
                    os.chmod(f, 0o2751)
                    os.link(f, os.path.join(root, "hardlink"))
                    subprocess.run(["setfattr", "-n", "user.v2p", "-v", "kept", f], check=True)
                    subprocess.run(["setfacl", "-m", "u:4321:r", f], check=True)
            target = sparse_file(os.path.join(d, "target.raw"), 600 * MiB)
            proc = v2p("--json", "restore", "--no-prepare", "--state-dir", os.path.join(d, "state"), image, target)
            r = result(proc)
            self.assertEqual([f["action"] for f in r["filesystems"]], ["recreate"])
            parts, _ = sfdisk_partitions(target)
            with loop(target, int(parts[1]["start"]) * 512, int(parts[1]["size"]) * 512) as dev:
                tags = blkid(dev)
                self.assertEqual((tags["UUID"], tags["LABEL"]), (uuid, "v2p-xfs"))
                with mounted(dev, "xfs", "ro,nouuid") as root:
                    f = os.path.join(root, "dir", "file")
                    st = os.stat(f)
                    self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777, st.st_nlink), (1234, 5678, 0o2751, 2))
                    self.assertEqual(st.st_ino, os.stat(os.path.join(root, "hardlink")).st_ino)
                    attr = subprocess.run(["getfattr", "--only-values", "-n", "user.v2p", f], capture_output=True,
                                          text=True).stdout
                    self.assertEqual(attr, "kept")
                    acl = subprocess.run(["getfacl", "-n", f], capture_output=True, text=True).stdout
                    self.assertIn("user:4321:r--", acl)
                    with open(f) as fh:
                        self.assertEqual(fh.read(), "content\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
