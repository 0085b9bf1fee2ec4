#!/usr/bin/env python3
"""e2e: `livemig evacuate` moves two running memload guests, two at a time, and
reports a third whose destination does not exist: that guest stays running on
the source (heartbeats continue, no CORRUPT), the run ends with status
"partial" and exit 1, and each moved guest keeps running on its destination.
Then the two moved guests are evacuated on with --hold into fresh destinations:
each is held paused after loading and started on the sender's go (its report
says "held", which the first run's reports do not), and runs there with rising
heartbeats."""
import os
import sys

import lmtest


def main():
    work = lmtest.workdir("livemig-evacuate-")
    pairs, nexts = [], []
    try:
        for i in range(3):
            os.makedirs(os.path.join(work, "g%d" % i))
        for i in range(2):
            pairs.append(lmtest.guest_pair(os.path.join(work, "g%d" % i), mib=48, rate=8, pattern="hotset"))
        stay, stay_dst = lmtest.guest_pair(os.path.join(work, "g2"), mib=48, rate=8, pattern="uniform")
        stay_dst.kill()  # its destination is gone: this guest must stay where it is
        args = ["evacuate", "--parallel", "2", "--downtime", "300"]
        for src, dst in pairs:
            args += ["--guest", "%s=%s" % (src.qmp_path, dst.qmp_path)]
        args += ["--guest", "%s=%s" % (stay.qmp_path, os.path.join(work, "no-such-destination.sock"))]
        rc, res, err = lmtest.run_livemig(args, timeout=400)
        assert rc == 1 and res and res["status"] == "partial", (rc, res, err)
        guests = res["guests"]
        assert len(guests) == 3, guests
        ok = [g for g in guests if g["status"] == "ok"]
        failed = [g for g in guests if g["status"] != "ok"]
        assert len(ok) == 2 and len(failed) == 1, guests
        for src, dst in pairs:
            assert dst.status() == "running", dst.status()
            src.proc.wait(timeout=10)  # the source quits once its destination runs
            mine = [g for g in guests if g.get("source_qmp") == src.qmp_path]
            assert len(mine) == 1 and not mine[0]["held"], mine  # no --hold: QEMU started it by itself
            lmtest.check_destination(dst, seconds=3, reports=mine)
        assert stay.alive() and stay.status() == "running", "the guest that could not move must keep running"
        lmtest.check_destination(stay, seconds=3)  # same health check, on the source
        print("ok: 2 guests moved, 1 reported and still running on the source: %s" %
              [(os.path.basename(os.path.dirname(g["source_qmp"])), g["status"]) for g in guests])
        onward_with_hold([dst for _, dst in pairs], nexts)
    finally:
        for src, dst in pairs:
            src.kill()
            dst.kill()
        for nxt in nexts:
            nxt.kill()
        if "stay" in locals():
            stay.kill()


def onward_with_hold(guests, nexts):
    """Evacuates `guests` (running QEMUs) with --hold, each into a fresh -incoming defer destination
    (appended to `nexts`)."""
    for g in guests:
        mem = g.machine.memory_mib
        append = " ".join(g.argv[g.argv.index("-append") + 1].split()[len(lmtest.BASE_APPEND.split()):])  # without BASE_APPEND
        nexts.append(lmtest.Qemu(g.workdir, "next", mem, append, incoming=True))
    args = ["evacuate", "--parallel", "2", "--downtime", "300", "--hold", "--go-timeout", "20"]
    for g, nxt in zip(guests, nexts):
        args += ["--guest", "%s=%s" % (g.qmp_path, nxt.qmp_path)]
    rc, res, err = lmtest.run_livemig(args, timeout=300)
    assert rc == 0 and res and res["status"] == "ok" and res["migrated"] == 2, (rc, res, err)
    for g, nxt in zip(guests, nexts):
        mine = [r for r in res["guests"] if r.get("source_qmp") == g.qmp_path]
        assert len(mine) == 1 and mine[0]["status"] == "ok", mine
        assert mine[0]["held"] is True, mine  # paused after loading, started on the sender's go
        assert nxt.status() == "running", nxt.status()
        g.proc.wait(timeout=10)  # the source quits once its destination runs
        gens = lmtest.check_destination(nxt, seconds=3, reports=mine)
        print("ok: %s moved on with --hold (downtime %s ms), gens %s" % (
            os.path.basename(g.workdir), mine[0]["downtime_ms"], gens[-3:]))


if __name__ == "__main__":
    sys.exit(lmtest.main_retrying_frozen_guest(main))
