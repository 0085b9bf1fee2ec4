#!/usr/bin/python3
"""An <emulator> for libvirt domains that migrate under TCG: runs QEMU with
harness.qemu.TCG_MIGRATION_EXTRA_KIB more RAM than libvirt's command line asks.

Why: QEMU 7.2's dirty-bitmap sync skips the TCG soft-TLB reset for a RAM block whose size
is a whole number of 64-page words, so a migrated TCG guest loses some of its stores
(harness/qemu.py says more). harness.qemu.Machine sizes its guests off that path itself;
libvirt rounds a domain's memory to 1 MiB, so a libvirt domain reaches it only through its
emulator. Point a domain's <emulator> here (harness.libvirtd.TCG_MIGRATABLE_EMULATOR) and
both ends of its migration run it, so the two RAM blocks still match.

Contract: only a command line with `-accel tcg[,...]` changes, and in it only the guest's RAM:
`-m` (a size in MiB, or `size=` with a unit) and the `memory-backend-ram` object named
`pc.ram` that libvirt ties to it (their sizes must stay equal; the object in libvirt's JSON
form, as libvirt 9.0 writes it: an older libvirt's `key=value` form is left alone, and QEMU
then refuses the mismatch). Anything else, such as libvirt's capability probe, reaches QEMU
as given. QEMU is harness.qemu.QEMU (UTSUSHI_QEMU, else qemu-system-x86_64) found on PATH.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness.qemu import QEMU, TCG_MIGRATION_EXTRA_KIB  # noqa: E402

UNITS = {"": 1 << 20, "m": 1 << 20, "k": 1 << 10, "g": 1 << 30, "b": 1}


def ram_bytes(value):
    """`-m` as QEMU reads it: N (MiB) or size=N[unit], plus other keys; returns (bytes, rest)."""
    parts = value.split(",")
    size = parts[0][len("size="):] if parts[0].startswith("size=") else parts[0]
    unit = size[-1].lower() if size and size[-1].isalpha() else ""
    return int(size[:-1] if unit else size) * UNITS[unit], parts[1:]


def widen(argv):
    extra = TCG_MIGRATION_EXTRA_KIB * 1024
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        value = out[i + 1]
        if arg == "-m":
            size, rest = ram_bytes(value)
            out[i + 1] = ",".join(["size=%dk" % ((size + extra) // 1024)] + rest)
        elif arg == "-object" and value.startswith("{"):
            obj = json.loads(value)
            if obj.get("qom-type") == "memory-backend-ram" and obj.get("id") == "pc.ram":
                obj["size"] += extra
                out[i + 1] = json.dumps(obj, separators=(",", ":"))
    return out


def main():
    qemu = shutil.which(QEMU, path=os.environ.get("PATH", "") + ":/usr/bin:/bin")
    if qemu is None:
        sys.exit("qemu_tcg_migratable: no %s on PATH" % QEMU)
    argv = sys.argv[1:]
    if any(a == "-accel" and v.split(",")[0] == "tcg" for a, v in zip(argv, argv[1:])):
        argv = widen(argv)
    os.execv(qemu, [qemu] + argv)


if __name__ == "__main__":
    main()
