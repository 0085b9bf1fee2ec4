"""Shared helpers for the p2v end-to-end tests: run the built p2v, convert images to
sparse raw, check each partition with its filesystem's checker through a read-only loop
device (one per partition, by offset), and count deleted-data markers."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from harness.fixtures import count_marker, fixture  # noqa: E402,F401

BIN = os.environ.get("UTSUSHI_BIN", os.path.join(HERE, "..", "..", "..", "build", "bin"))
P2V = os.path.join(BIN, "p2v")


def p2v(*args, check=True, env=None, timeout=300):
    proc = subprocess.run([P2V, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"p2v {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def to_raw(image, out):
    subprocess.run(["qemu-img", "convert", "-O", "raw", image, out], check=True)


def fsck_partition(raw, start, size, filesystem):
    """Runs the filesystem's read-only checker on [start, start+size) of raw; returns (rc, output)."""
    loop = subprocess.run(["losetup", "-f", "--show", "-r", "-o", str(start), "--sizelimit", str(size), raw],
                          capture_output=True, text=True, check=True).stdout.strip()
    try:
        cmd = {"ext4": ["e2fsck", "-fn"], "xfs": ["xfs_repair", "-n"], "vfat": ["fsck.vfat", "-n"],
               "ntfs": ["ntfsfix", "-n"]}[filesystem]
        proc = subprocess.run(cmd + [loop], capture_output=True, text=True)
        return proc.returncode, proc.stdout + proc.stderr
    finally:
        subprocess.run(["losetup", "-d", loop])


def checked_volumes(fx):
    """(name, start, size, filesystem) for every checkable filesystem of a fixture."""
    out = []
    for p in fx["partition_table"]["partitions"]:
        fs = p.get("filesystem")
        if fs in ("ext4", "xfs", "vfat", "ntfs"):
            out.append((f"p{p['number']}", p["start_bytes"], p["size_bytes"], fs))
        lvm = p.get("lvm")
        if lvm:
            lv = lvm["logical_volume"]
            # The fixture's LV is one contiguous segment starting at extent 0 (recipe checks it).
            out.append((lvm["lv_path"], p["start_bytes"] + lv.get("offset_in_pv_bytes", lvm["pe_start_bytes"]), lv.get("size_bytes", 120 << 20), lv["filesystem"]))
    return out


def deleted_markers(fx):
    """(start, size, marker) of every deleted-data marker a fixture recorded."""
    out = []
    for p in fx["partition_table"]["partitions"]:
        d = p.get("deleted_data") or p.get("lvm", {}).get("logical_volume", {}).get("deleted_data")
        if d:
            out.append((p["start_bytes"], p["size_bytes"], d["marker"]))
    return out


def workdir():
    return tempfile.TemporaryDirectory(prefix="p2v-e2e-", dir="/var/tmp")
