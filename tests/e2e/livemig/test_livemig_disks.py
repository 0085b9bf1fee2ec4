#!/usr/bin/env python3
"""e2e: `livemig send/receive --copy-storage` moves a real guest whose root disk is a qcow2
overlay over the golden-guest image (Debian 12, TCG), while the guest writes to that disk.

One source guest boots once (serial console, root shell) and starts a writer: a loop that
writes files of random data, each followed by its sha256 and a sync, and counts them. Then:
  1. link cut during the disk copy (a relay cuts after a few MB, capped at 4 MiB/s): the
     sender fails, the source guest runs on and its writer keeps counting, QEMU lists no
     block export, no dirty bitmap and no migration in progress; the receiver removed its
     exports and discarded its destination (QEMU exited).
  2. receiver killed during the disk copy: the same on the source side.
  3. success: the destination QEMU (-incoming defer) has its own overlay created with
     `qemu-img create -b GOLDEN` of the same virtual size. After migration the source QEMU
     is gone; on the destination the writer is stopped, the page cache dropped and every
     file written (before, during and after the migration) is read back from the disk the
     destination now has and checked against its sha256: no lost or stale block. The
     reports show the golden image's blocks were not sent (backing bytes) and that the
     bytes sent are a small part of what the disk holds.
Both ends back on the one golden image file of this host (present at both ends).
"""
import json
import os
import subprocess
import sys
import time

import lmtest
from harness.fixtures import fixture
from harness.qemu import Machine

MEM = 512
SENDER_TIMEOUT = 400


class Guest:
    """A harness Machine with the golden-guest overlay as its root disk and a second QMP
    monitor for livemig (qmp_path); `mon` is the test's own."""

    def __init__(self, work, name, golden, incoming=False):
        self.name = name
        extra = ["-incoming", "defer"] if incoming else []
        self.machine = Machine(name, memory_mib=MEM, smp=1, machine="pc", extra_args=extra, workdir_parent=work,
                               no_reboot=False, migratable=True)
        self.overlay = self.machine.add_disk(golden, fmt="qcow2", bus="virtio")
        self.qmp_path = self.machine.add_qmp()
        self.machine.start()
        self.mon = self.machine.qmp

    def alive(self):
        return self.machine.alive()

    def exports(self):
        return self.mon.execute("query-block-exports")

    def bitmaps(self):
        names = []
        for b in self.mon.execute("query-block"):
            names += [m["name"] for m in b.get("inserted", {}).get("dirty-bitmaps", [])]
        return names

    def kill(self):
        if self.alive():
            self.machine.proc.kill()
            self.machine.proc.wait()


def writer_count(shell):
    status, out = shell.run("cat /data/count 2>/dev/null || echo 0")
    assert status == 0, out
    return int(out.strip() or 0)


def wait_count_beyond(shell, n, what, timeout=120):
    """The writer's count passes `n` within `timeout`: the guest runs and writes its disk."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = writer_count(shell)
        if c > n:
            return c
        time.sleep(1)
    raise AssertionError("%s: the guest's disk writer stopped at %d" % (what, n))


def read_back(shell, before, what="destination"):
    """On a migrated guest (`shell`: a console with run() and serial_text()): the writer
    goes on past its count, then stops; every file it wrote is read back from the disk
    (page cache dropped) against its sha256. Returns (count when checked, files checked).
    A kernel crash on the way is lmtest.DestinationCrashed, a writer that stopped while the
    console answers lmtest.DestinationSilent (the caller's main() runs once more: after a
    move whose disk and memory hashes matched, a guest that stalls is QEMU 7.2's TCG issue;
    twice in a row fails); a bad file always fails."""
    try:
        try:
            after = wait_count_beyond(shell, writer_count(shell), what)
        except AssertionError as e:
            lmtest.raise_if_kernel_crashed(shell.serial_text(), what)
            raise lmtest.DestinationSilent(str(e)) from e
        status, out = shell.run("kill $(cat /run/writer.pid); sleep 1; sync; echo 3 > /proc/sys/vm/drop_caches; "
                                "n=$(cat /data/count); bad=0; sha256sum -c --quiet /data/bulk.sum || bad=1; i=1; "
                                "while [ $i -le $n ]; do sha256sum -c --quiet /data/f$i.sum || bad=$((bad+1)); "
                                "i=$((i+1)); done; echo checked=$n bad=$bad", timeout=600)
    except Exception:
        lmtest.raise_if_kernel_crashed(shell.serial_text(), what)
        raise
    assert status == 0, out
    checked, bad = [int(x.split("=")[1]) for x in out.strip().splitlines()[-1].split()]
    assert bad == 0 and checked > before, out
    return after, checked


def source_fine_and_clean(src, what):
    """The source runs its guest, whose writer goes on; QEMU holds no export, bitmap or migration."""
    assert src.alive(), what + ": source QEMU exited"
    st = src.mon.execute("query-status")["status"]
    assert st == "running", "%s: source is %s" % (what, st)
    assert src.exports() == [], "%s: exports left on the source: %r" % (what, src.exports())
    assert src.bitmaps() == [], "%s: dirty bitmaps left on the source: %r" % (what, src.bitmaps())
    mig = src.mon.execute("query-migrate").get("status", "none")
    assert mig not in ("active", "setup", "pre-switchover", "device"), "%s: migration %s" % (what, mig)
    # The first-pass hold (QEMU's max-bandwidth at 10 bytes/s) never outlives the sender.
    bw = src.mon.execute("query-migrate-parameters")["max-bandwidth"]
    assert bw > 10, "%s: QEMU's max-bandwidth left at %d bytes/s" % (what, bw)
    wait_count_beyond(src.machine, writer_count(src.machine), what)


def send(src, port, token, *extra, **kw):
    return subprocess.Popen([lmtest.LIVEMIG, "--json", "send", "--qmp", src.qmp_path, "--to", "127.0.0.1:%d" % port,
                             "--token-file", token, "--copy-storage", "all"] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def failure_cases(work, token, golden, src):
    # 1. The link is cut during the disk copy: the receiver discards its destination.
    dst = Guest(work, "dst1", golden, incoming=True)
    recv, port = lmtest.start_receiver(work, dst, token, "--copy-storage", "--accept-timeout", "60")
    relay = lmtest.Relay(port, rate=4 << 20, cut_after=6 << 20)
    p = send(src, relay.port, token)
    out, err = lmtest.communicate(p, SENDER_TIMEOUT, "sender (link cut)")
    relay.close()
    rout, rerr = lmtest.communicate(recv, 60, "receiver (link cut)")
    res, rres = lmtest.last_json(out), lmtest.last_json(rout)
    assert p.returncode != 0 and res and res["status"] == "failed", (p.returncode, out, err)
    assert res.get("disk_phases") and res["disk_phases"][0]["phase"] == "bulk", res
    assert res["disks"][0]["allocated_bytes"] > res["disks"][0]["data_bytes"], res
    assert rres and rres["status"] == "failed" and rres["source_state"] == "discarded", rout
    dst.machine.wait_exit(30)
    assert not dst.alive(), "link cut: destination QEMU still runs"
    source_fine_and_clean(src, "link cut")
    print("link cut during the disk copy: failed cleanly (%s); %d data bytes of the bulk pass had gone"
          % (res["error"], res["disks"][0]["data_bytes"]), flush=True)

    # 2. The receiver is killed during the disk copy.
    dst = Guest(work, "dst2", golden, incoming=True)
    recv, port = lmtest.start_receiver(work, dst, token, "--copy-storage", "--accept-timeout", "60")
    p = send(src, port, token, "--bandwidth", "4M")
    deadline = time.monotonic() + 60
    while not dst.exports() and time.monotonic() < deadline:  # the receiver's export: the disk copy runs
        time.sleep(0.1)
    assert dst.exports(), "the receiver never exported the destination's disk"
    time.sleep(1)
    recv.kill()
    recv.communicate()
    out, err = lmtest.communicate(p, SENDER_TIMEOUT, "sender (receiver killed)")
    res = lmtest.last_json(out)
    assert p.returncode != 0 and res and res["status"] == "failed", (p.returncode, out, err)
    dst.kill()
    source_fine_and_clean(src, "receiver killed")
    print("receiver killed during the disk copy: failed cleanly (%s)" % res["error"], flush=True)


def success_case(work, token, golden, src):
    dst = Guest(work, "dst3", golden, incoming=True)
    recv, port = lmtest.start_receiver(work, dst, token, "--copy-storage", "--accept-timeout", "60")
    before = writer_count(src.machine)
    t0 = time.monotonic()
    p = send(src, port, token, "--bandwidth", "32M")
    out, err = lmtest.communicate(p, SENDER_TIMEOUT, "sender")
    rout, rerr = lmtest.communicate(recv, 60, "receiver")
    wall = time.monotonic() - t0
    res, rres = lmtest.last_json(out), lmtest.last_json(rout)
    assert p.returncode == 0 and res["status"] == "ok", (p.returncode, out, err, rout, rerr)
    assert rres["status"] == "ok", rout
    src.machine.wait_exit(30)
    assert not src.alive(), "the source QEMU still runs after success"
    assert dst.mon.execute("query-status")["status"] == "running"
    assert dst.exports() == [], "exports left on the destination: %r" % dst.exports()

    d, rd = res["disks"][0], rres["disks"][0]
    assert d["hash"] == rd["hash"] and d["data_bytes"] == rd["data_bytes"], (d, rd)
    shell = dst.machine
    after, checked = read_back(shell, before)
    assert d["backing_bytes"] > 500 << 20, d  # the golden image's blocks stayed home
    assert d["data_bytes"] < d["allocated_bytes"] // 4, d
    phases = [ph["phase"] for ph in res["disk_phases"]]
    assert phases[0] == "bulk" and phases[-1] == "final", phases
    # The guest writes throughout and its memory takes seconds to move: dirty passes ran
    # between the memory stream's frames, not only before it.
    assert "follow" in phases, phases
    assert 0 <= res["first_pass_held_ms"] < res["total_ms"], res
    print("copy-storage: ok in %.1f s (sender %d ms, downtime %d ms, QEMU's first pass held %d ms); disk %s: %d "
          "allocated, %d in the backing file (not sent), %d data + %d zero bytes sent, %d on the link; passes %s; link "
          "total %d bytes; files written: %d before the migration, %d when checked on the destination; %d checked on "
          "the destination, 0 bad"
          % (wall, res["total_ms"], res["downtime_ms"], res["first_pass_held_ms"], d["node"], d["allocated_bytes"],
             d["backing_bytes"],
             d["data_bytes"], d["zero_bytes"], d["wire_bytes"],
             ", ".join("%s x%d %d B/%d ms" % (ph["phase"], ph["passes"], ph["data_bytes"], ph["ms"])
                       for ph in res["disk_phases"]),
             res["bytes_on_wire"], before, after, checked), flush=True)
    shell.run("sync")
    dst.kill()


def main():
    golden = fixture("golden-guest")["path"]
    work, token = lmtest.workdir_with_token("copy-storage-tests-token-0123456789")
    src = Guest(work, "src", golden)
    try:
        src.machine.wait_for("login:", 300)
        src.machine.login()
        # 48 MB of the guest's own data first (the bulk pass), then the writer: 256 KiB files
        # with their sha256, synced, counted in /data/count.
        status, out = src.machine.run(
            "mkdir -p /data && dd if=/dev/urandom of=/data/bulk bs=1M count=48 status=none && sync && "
            "sha256sum /data/bulk > /data/bulk.sum && echo 0 > /data/count", timeout=300)
        assert status == 0, out
        src.machine.run("(i=0; while true; do i=$((i+1)); dd if=/dev/urandom of=/data/f$i bs=64k count=4 "
                        "status=none; sha256sum /data/f$i > /data/f$i.sum; sync; echo $i > /data/count; "
                        "sleep 0.2; done) >/dev/null 2>&1 & echo $! > /run/writer.pid")
        wait_count_beyond(src.machine, 2, "source")
        failure_cases(work, token, golden, src)
        success_case(work, token, golden, src)
    finally:
        src.kill()
    print("ok")


if __name__ == "__main__":
    lmtest.main_retrying_frozen_guest(main)
