#!/usr/bin/env python3
"""bench/lib/benchlib.py — what every benchmark in bench/ measures with, in one place.

Python benchmarks:  sys.path.insert(0, <repo>/bench/lib); import benchlib
  Importing it puts the repository's tests/ on sys.path (once, here), so a benchmark uses
  tests/harness (`from harness import qemu, fixtures`) and livemig's test helpers
  (benchlib.lmtest()) as the tests do.
Shell benchmarks:   python3 <repo>/bench/lib/benchlib.py COMMAND ...  (see main()).

Contract:
  - bin_dir(arg): the utsushi binaries: `arg`, else $UTSUSHI_BIN, else <repo>/build/bin.
  - drop_caches(): sync, then drop the page cache, dentries and inodes (root only), so
    that the next run reads from the device: a cold cache.
  - timed(cmd, output=None, cold=True): runs cmd (a list; stdout discarded, stderr kept
    for the error) after drop_caches() when cold, and makes `output` durable (fsync of the
    file, or sync) inside the timed region, so a tool that returns before its data is on
    disk pays for it as one that fsyncs does. Returns Timing(wall, user, sys) in seconds
    (user and sys of the command's processes, from getrusage). Raises BenchError when the
    command fails.
  - sectors_read(device): 512-byte sectors read from a block device so far
    (/sys/block/X/stat), for "bytes read from the source" columns.
  - file_bytes(path): (apparent, allocated) size of a file.
  - append_jsonl(path, rows): appends one JSON object per line (the result files in
    bench/*/ are JSON lines); never rewrites earlier lines.
  - peer(name) / require_peers(names): the peer tools benchmarks compare against: found
    on PATH with their version line, or (require_peers) a clear exit naming the Debian
    package to install. peer_versions(names) is the one-line summary a result header
    carries.
"""
import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
TESTS = os.path.join(REPO, "tests")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

# name -> (Debian package, arguments that print the version)
PEERS = {
    "qemu-img": ("qemu-utils", ["--version"]),
    "qemu-nbd": ("qemu-utils", ["--version"]),
    "partclone.extfs": ("partclone", ["-v"]),
    "partclone.xfs": ("partclone", ["-v"]),
    "partclone.restore": ("partclone", ["-v"]),
    "virt-v2v": ("virt-v2v", ["--version"]),
    "nbdkit": ("nbdkit", ["--version"]),
    "nbdcopy": ("libnbd-bin", ["--version"]),
    "virt-sysprep": ("guestfs-tools", ["--version"]),
    "virt-customize": ("guestfs-tools", ["--version"]),
    "virt-clone": ("virtinst", ["--version"]),
    "virt-install": ("virtinst", ["--version"]),
    "virsh": ("libvirt-clients", ["--version"]),
    "growpart": ("cloud-guest-utils", ["--help"]),
    "resize2fs": ("e2fsprogs", []),
    "qemu-system-x86_64": ("qemu-system-x86", ["--version"]),
}

Timing = collections.namedtuple("Timing", "wall user sys")
Peer = collections.namedtuple("Peer", "name path version")


class BenchError(RuntimeError):
    pass


def bin_dir(arg=None):
    return arg or os.environ.get("UTSUSHI_BIN") or os.path.join(REPO, "build", "bin")


def lmtest():
    """livemig's test helpers (tests/e2e/livemig/lmtest.py): guests, relay, receiver."""
    path = os.path.join(TESTS, "e2e", "livemig")
    if path not in sys.path:
        sys.path.insert(0, path)
    import lmtest as module
    return module


def require_root(why):
    if os.geteuid() != 0:
        raise SystemExit(f"run as root ({why})")


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def make_durable(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        os.sync()
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime


def timed(cmd, output=None, cold=True, **popen_kw):
    if cold:
        drop_caches()
    user0, sys0 = _children_cpu()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen_kw)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): "
                         f"{proc.stderr.decode(errors='replace')[-2000:]}")
    if output:
        make_durable(output)
    wall = time.monotonic() - t0
    user1, sys1 = _children_cpu()
    return Timing(wall, user1 - user0, sys1 - sys0)


def sectors_read(device):
    with open(f"/sys/block/{os.path.basename(os.path.realpath(device))}/stat") as f:
        return int(f.read().split()[2])


def file_bytes(path):
    st = os.stat(path)
    return st.st_size, st.st_blocks * 512


def append_jsonl(path, rows):
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def peer(name):
    path = shutil.which(name)
    if not path:
        return None
    args = PEERS.get(name, ("", ["--version"]))[1]
    version = ""
    if args:
        out = subprocess.run([path, *args], capture_output=True, text=True, timeout=60)
        lines = (out.stdout or out.stderr).strip().splitlines()
        version = lines[0].strip() if lines else ""
    return Peer(name, path, version)


def require_peers(names):
    found, missing = [], []
    for name in names:
        p = peer(name)
        (found if p else missing).append(p or name)
    if missing:
        packages = sorted({PEERS.get(n, (n,))[0] for n in missing})
        raise SystemExit(f"missing peer tools {', '.join(missing)}: apt-get install {' '.join(packages)}")
    return found


def peer_versions(names):
    return "; ".join(p.version or p.name for p in require_peers(names))


def main(argv):
    """Shell benchmarks' entry points:
      cold                          drop the page cache
      time [--warm] [--output F] -- CMD...   print "wall user sys" (seconds) of CMD
      sectors-read DEVICE           print 512-byte sectors read from DEVICE so far
      peers NAME...                 print the peers' version lines ("; "), exit 1 if missing
    """
    if not argv or argv[0] in ("-h", "--help"):
        print(main.__doc__)
        return 0
    cmd, args = argv[0], argv[1:]
    if cmd == "cold":
        drop_caches()
    elif cmd == "time":
        cold, output = True, None
        while args and args[0] != "--":
            if args[0] == "--warm":
                cold, args = False, args[1:]
            elif args[0] == "--output":
                output, args = args[1], args[2:]
            else:
                raise SystemExit(f"benchlib time: unknown option {args[0]}")
        t = timed(args[1:], output=output, cold=cold)
        print(f"{t.wall:.3f} {t.user:.3f} {t.sys:.3f}")
    elif cmd == "sectors-read":
        print(sectors_read(args[0]))
    elif cmd == "peers":
        print(peer_versions(args))
    else:
        raise SystemExit(f"benchlib: unknown command {cmd!r}\n{main.__doc__}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        sys.exit(str(e))
