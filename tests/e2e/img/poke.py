#!/usr/bin/env python3
"""Pokes big-endian integers into a file: poke.py FILE OFFSET WIDTH VALUE [...].
OFFSET/VALUE accept Python expressions (hex, arithmetic); WIDTH is 1, 2, 4 or 8.
Special OFFSET forms: l1[N] = the Nth active L1 entry, l2[N] = entry N of the
first L2 table, rt[N] = refcount table entry N."""
import struct
import sys

path = sys.argv[1]
args = sys.argv[2:]
with open(path, "r+b") as f:
    head = f.read(112)
    l1_off = struct.unpack(">Q", head[40:48])[0]
    rt_off = struct.unpack(">Q", head[48:56])[0]
    for i in range(0, len(args), 3):
        where, width, value = args[i], int(args[i + 1]), eval(args[i + 2])
        if where.startswith("l1["):
            off = l1_off + 8 * int(where[3:-1])
        elif where.startswith("rt["):
            off = rt_off + 8 * int(where[3:-1])
        elif where.startswith("l2["):
            f.seek(l1_off)
            l2 = struct.unpack(">Q", f.read(8))[0] & 0x00FFFFFFFFFFFE00
            off = l2 + 8 * int(where[3:-1])
        else:
            off = eval(where)
        f.seek(off)
        f.write(value.to_bytes(width, "big"))
