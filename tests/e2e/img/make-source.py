#!/usr/bin/env python3
"""Writes a sparse raw test image: scattered data of three kinds (random,
compressible text, clusters that are partly zero) plus data at the very end.
Usage: make-source.py PATH SIZE_MIB [SEED]"""
import random
import sys

path, size_mib = sys.argv[1], int(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rng = random.Random(seed)
size = size_mib << 20
words = [b"qcow2", b"cluster", b"utsushi", b"refcount", b"guest", b"zstd", b"\n", b"kernel", b"block"]
with open(path, "wb") as f:
    f.truncate(size)
    for i in range(size_mib * 3):
        off = rng.randrange(0, size - 300000)
        n = rng.choice([1, 512, 4096, 65536, 70000, 200000])
        kind = rng.randrange(3)
        if kind == 0:
            data = rng.randbytes(n)
        elif kind == 1:
            data = b" ".join(rng.choice(words) for _ in range(n // 5 + 1))[:n]
        else:
            data = bytes(n // 2) + rng.randbytes(n - n // 2)
        f.seek(off)
        f.write(data)
    f.seek(size - 4096)
    f.write(rng.randbytes(4096))
