#!/usr/bin/env python3
"""The virt library against a real libvirtd: a private daemon (tests/harness/libvirtd.py)
serves the hidden [.libvirtd] cases of unit_virt (tests/unit/virt/libvirtd_test.cpp):
define/replace and the MAC set on a real QEMU driver, a qcow2 uploaded into a directory
pool and an overlay volume on it (checked with qemu-img), and a killed daemon turning
into errors. Each case gets a daemon of its own: the last one kills its daemon."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from harness.libvirtd import PrivateLibvirtd  # noqa: E402

CASES = [
    "virt::Connection on libvirtd: define refuses duplicates and replace=yes replaces a running one",
    "virt storage on libvirtd: a qcow2 uploaded into a pool and an overlay volume on it",
    "virt::Connection: a killed libvirtd turns into errors and not hangs",
]


def main():
    if os.geteuid() != 0:
        print("SKIP: a private libvirtd needs root")
        return 0
    unit = os.path.join(os.environ["UTSUSHI_BIN"], "unit_virt")
    failed = 0
    for case in CASES:
        with PrivateLibvirtd() as lv, tempfile.TemporaryDirectory(prefix="utsushi-pool-") as pool:
            env = dict(os.environ,
                       UTSUSHI_TEST_LIBVIRT_URI=lv.uri,
                       UTSUSHI_TEST_POOL_DIR=os.path.join(pool, "pool"),
                       UTSUSHI_TEST_LIBVIRTD_PID=str(lv.proc.pid))  # unshare and sh exec libvirtd: one PID
            proc = subprocess.run([unit, "--warn", "NoTests", case], env=env, timeout=300)
            print(f"{'ok' if proc.returncode == 0 else 'FAILED'}: {case}", flush=True)
            failed += proc.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
