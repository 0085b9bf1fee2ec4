#!/usr/bin/env python3
"""check-like-qemu.py UTSUSHI_IMG IMAGE...: runs `qemu-img check` and
`utsushi-img check` on each image and compares the exit status and the
counts qemu-img reports (corruptions, leaks, check errors, image end offset).
Prints one line per image ("ok: ..." or "FAIL: ..."); exits 1 if any differs."""
import json
import os
import subprocess
import sys

KEYS = ["corruptions", "leaks", "check-errors", "image-end-offset"]


def qemu(path):
    p = subprocess.run(["qemu-img", "check", "--output=json", path], capture_output=True, text=True)
    try:
        j = json.loads(p.stdout)
    except ValueError:
        j = {}
    return p.returncode, [j.get(k, 0) for k in KEYS]


def ours(tool, path):
    p = subprocess.run([tool, "--json", "check", path], capture_output=True, text=True)
    lines = p.stdout.strip().splitlines()
    try:
        j = json.loads(lines[-1]) if lines else {}
    except ValueError:
        j = {}
    return p.returncode, [j.get(k, 0) for k in KEYS], p.stderr.strip()


failed = 0
for image in sys.argv[2:]:
    qrc, qv = qemu(image)
    urc, uv, err = ours(sys.argv[1], image)
    name = os.path.basename(image)
    if (qrc, qv) == (urc, uv):
        print(f"ok: {name}: exit {urc}, {dict(zip(KEYS, uv))} as qemu-img")
    else:
        failed += 1
        print(f"FAIL: {name}: qemu-img exit {qrc} {qv}, utsushi-img exit {urc} {uv} {err[:200]}")
sys.exit(1 if failed else 0)
