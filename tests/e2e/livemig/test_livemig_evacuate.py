#!/usr/bin/env python3
"""e2e: `livemig evacuate` moves two running memload guests, two at a time, and
reports a third whose destination does not exist: that guest stays running on
the source (heartbeats continue, no CORRUPT), the run ends with status
"partial" and exit 1, and each moved guest keeps running on its destination."""
import os
import sys
import tempfile

import lmtest


def main():
    work = tempfile.mkdtemp(prefix="livemig-evacuate-")
    pairs = []
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
            lmtest.check_destination(dst, seconds=3, reports=mine)
        assert stay.alive() and stay.status() == "running", "the guest that could not move must keep running"
        lmtest.check_destination(stay, seconds=3)  # same health check, on the source
        print("ok: 2 guests moved, 1 reported and still running on the source: %s" %
              [(os.path.basename(os.path.dirname(g["source_qmp"])), g["status"]) for g in guests])
    finally:
        for src, dst in pairs:
            src.kill()
            dst.kill()
        if "stay" in locals():
            stay.kill()


if __name__ == "__main__":
    sys.exit(lmtest.main_retrying_frozen_guest(main))
