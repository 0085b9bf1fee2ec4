#!/usr/bin/env python3
"""e2e: `livemig migrate` moves a memload guest (TCG) that keeps writing between
two QEMU processes; the destination keeps running with rising generations and
never CORRUPT; the source ends only after the destination runs."""
import sys

import lmtest


def main():
    work = lmtest.workdir()
    src, dst = lmtest.guest_pair(work, mib=128, rate=16, pattern="hotset", update="sparse", content="half")
    try:
        rc, res, err = lmtest.run_livemig(["migrate", "--source-qmp", src.qmp_path, "--dest-qmp", dst.qmp_path,
                                           "--downtime", "300"])
        assert rc == 0 and res and res["status"] == "ok", (rc, res, err)
        for key in ("bytes_from_qemu", "bytes_on_wire", "rounds", "total_ms", "downtime_ms", "status"):
            assert key in res, key
        assert res["bytes_to_qemu"] == res["bytes_from_qemu"], res
        assert res["bytes_on_wire"] < res["bytes_from_qemu"], res
        assert res["rounds"] >= 2 and res["downtime_ms"] >= 0, res
        assert dst.status() == "running"
        src.proc.wait(timeout=10)  # livemig quits the source once the destination runs
        gens = lmtest.check_destination(dst, seconds=4, reports=[res])
        print("ok: %s bytes from QEMU, %s on the link, %s rounds, %s ms, downtime %s ms; destination gens %s" % (
            res["bytes_from_qemu"], res["bytes_on_wire"], res["rounds"], res["total_ms"], res["downtime_ms"], gens[-3:]))
    finally:
        src.kill()
        dst.kill()


if __name__ == "__main__":
    sys.exit(lmtest.main_retrying_frozen_guest(main))
