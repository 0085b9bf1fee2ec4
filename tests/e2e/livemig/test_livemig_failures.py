#!/usr/bin/env python3
"""e2e: failures end the migration with the source guest running and intact.
One source guest is reused for every case (it must survive each); each case
gets a fresh destination, which livemig discards.
  - the link is cut mid-migration
  - the receiver is killed mid-migration
  - a corrupted frame: a relay (tests/harness/fault_relay.py) flips one bit in
    the payload of the 5th data frame; the receiver must name the corruption
(A stream layout livemig does not know is refused by the sender: tests/unit/livemig/sender_test.cpp,
with a scripted source; the product has no option to let QEMU send one.)
"""
import os
import subprocess
import sys
import time

import lmtest

MIB = 128


source_still_fine = lmtest.source_still_fine


def new_destination(work, n):
    append = open(os.path.join(work, "append")).read()
    return lmtest.Qemu(work, "dst%d" % n, MIB + int(os.environ.get("LIVEMIG_TEST_HEADROOM", "256")), append,
                       incoming=True)


def start_receiver(work, dst, token):
    return lmtest.start_receiver(work, dst, token, "--accept-timeout", "60")


def main():
    work, token = lmtest.workdir_with_token("failure-tests-token-0123456789")
    src, dst = lmtest.guest_pair(work, mib=MIB, rate=16, pattern="uniform", update="page", content="random")
    open(os.path.join(work, "append"), "w").write(" ".join(src.argv[src.argv.index("-append") + 1].split()[2:]))
    dsts = [dst]
    try:
        # 1. Link cut after ~20 MB through a slow relay.
        recv, port = start_receiver(work, dst, token)
        relay = lmtest.Relay(port, rate=16 << 20, cut_after=20 << 20)
        rc, res, err = lmtest.run_livemig(["send", "--qmp", src.qmp_path, "--to", "127.0.0.1:%d" % relay.port,
                                           "--token-file", token])
        relay.close()
        recv.wait(timeout=30)
        assert rc != 0 and res["status"] == "failed", (rc, res, err)
        source_still_fine(src, "link cut")
        print("link cut: failed cleanly:", res["error"])

        # 2. Receiver killed mid-migration.
        dst = new_destination(work, 2)
        dsts.append(dst)
        recv, port = start_receiver(work, dst, token)
        sender = subprocess.Popen([lmtest.LIVEMIG, "--json", "send", "--qmp", src.qmp_path, "--to",
                                   "127.0.0.1:%d" % port, "--token-file", token, "--bandwidth", "8M"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        recv.kill()
        out, err = sender.communicate(timeout=60)
        assert sender.returncode != 0, (out, err)
        source_still_fine(src, "receiver killed")
        print("receiver killed: sender said:", err.strip().splitlines()[-1])

        # 3. A corrupted frame: the relay flips one bit in the middle of the 5th data frame's
        # payload, after the sender computed its checksum. The receiver must refuse it by name.
        dst = new_destination(work, 3)
        dsts.append(dst)
        recv, port = start_receiver(work, dst, token)
        flip = lmtest.livemig_data_flip(5)
        relay = lmtest.Relay(port, flip=flip)
        rc, res, err = lmtest.run_livemig(["send", "--qmp", src.qmp_path, "--to", "127.0.0.1:%d" % relay.port,
                                           "--token-file", token])
        relay.close()
        rout, rerr = recv.communicate(timeout=30)
        assert flip.flipped, "the relay never reached a 5th data frame"
        assert rc != 0 and res["status"] == "failed", (rc, res, err)
        assert recv.returncode != 0, (rout, rerr)
        assert "payload checksum mismatch" in rerr + rout, (rout, rerr)
        source_still_fine(src, "corrupted frame")
        print("corrupted frame: detected:", res["error"])

    finally:
        src.kill()
        for d in dsts:
            d.kill()


if __name__ == "__main__":
    sys.exit(lmtest.main_retrying_frozen_guest(main))
