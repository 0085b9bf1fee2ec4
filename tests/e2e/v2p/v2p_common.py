"""Shared helpers for the v2p end-to-end tests: run the built v2p, look into a restored
target through read-only loop devices (one per partition, by offset), check manifests."""
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from harness.fixtures import fixture  # noqa: E402,F401

BIN = os.environ.get("UTSUSHI_BIN", os.path.join(HERE, "..", "..", "..", "build", "bin"))
V2P = os.path.join(BIN, "v2p")
UTSUSHI_IMG = os.path.join(BIN, "utsushi-img")


def v2p(*args, check=True, timeout=900):
    proc = subprocess.run([V2P, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"v2p {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def json_lines(proc):
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def result(proc):
    """The final JSON result line of a --json run."""
    return [j for j in json_lines(proc) if j.get("type") == "result"][-1]


def events(proc):
    """The messages of a --json run's event lines, in order."""
    return [j["message"] for j in json_lines(proc) if j.get("type") == "event"]


def workdir():
    return tempfile.TemporaryDirectory(prefix="v2p-e2e-", dir="/var/tmp")


class WorkdirCase(unittest.TestCase):
    """A test class with one scratch directory (self.dir) and a v2p state directory (self.state)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = workdir()
        cls.dir = cls.tmp.name
        cls.state = os.path.join(cls.dir, "state")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()


def sparse_file(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def sfdisk_partitions(path):
    out = subprocess.run(["sfdisk", "-J", path], capture_output=True, text=True, check=True).stdout
    table = json.loads(out)["partitiontable"]
    return {int(p["node"].rsplit(path, 1)[-1]): p for p in table["partitions"]}, table


@contextlib.contextmanager
def loop(path, offset, size, read_only=True):
    args = ["losetup", "-f", "--show", "-o", str(offset), "--sizelimit", str(size)] + (["-r"] if read_only else [])
    dev = subprocess.run(args + [path], capture_output=True, text=True, check=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev])


@contextlib.contextmanager
def mounted(dev, fstype, options="ro"):
    """The filesystem's files under a directory: mounted (ext4, XFS; NTFS through ntfs-3g),
    or for FAT, which this host's kernel does not mount, a copy made with mtools."""
    d = tempfile.mkdtemp(prefix="v2p-mnt-", dir="/var/tmp")
    if fstype == "vfat":
        try:
            subprocess.run(["mcopy", "-s", "-n", "-i", dev, "::*", d], check=True, capture_output=True)
            yield d
        finally:
            subprocess.run(["rm", "-rf", d])
        return
    cmd = ["ntfs-3g", "-o", options, dev, d] if fstype == "ntfs" else ["mount", "-t", fstype, "-o", options, dev, d]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        os.rmdir(d)
        raise AssertionError(f"{' '.join(cmd)}: {proc.stdout}{proc.stderr}")
    try:
        yield d
    finally:
        subprocess.run(["umount", d], check=True)
        os.rmdir(d)


def manifest_ok(root, manifest):
    proc = subprocess.run(["sha256sum", "-c", "--quiet", manifest], cwd=root, capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr


def blkid(dev):
    out = subprocess.run(["blkid", "-p", "-o", "export", dev], capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def sha256_file(path):
    return subprocess.run(["sha256sum", path], capture_output=True, text=True, check=True).stdout.split()[0]
