#!/usr/bin/env python3
"""e2e: `livemig send` / `livemig receive` over loopback through a rate-capped
relay (32 MiB/s). A sender with a wrong token is refused (its guest untouched),
then the right sender migrates the guest."""
import os
import subprocess
import sys
import time

import lmtest


def main():
    work = lmtest.workdir()
    token, bad = os.path.join(work, "token"), os.path.join(work, "bad-token")
    for path, text in ((token, "correct-horse-battery-staple-0001\n"), (bad, "not-the-right-token-at-all-xx\n")):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:  # owner-only
            f.write(text)
    src, dst = lmtest.guest_pair(work, mib=128, rate=8, pattern="hotset", update="sparse", content="half")
    port_file = os.path.join(work, "port")
    recv = subprocess.Popen([lmtest.LIVEMIG, "--json", "receive", "--listen", "127.0.0.1:0", "--qmp", dst.qmp_path,
                             "--token-file", token, "--port-file", port_file, "--accept-timeout", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    relay = None
    try:
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        port = int(open(port_file).read())
        relay = lmtest.Relay(port, rate=32 << 20)
        to = "127.0.0.1:%d" % relay.port

        rc, res, err = lmtest.run_livemig(["send", "--qmp", src.qmp_path, "--to", to, "--token-file", bad])
        assert rc != 0 and res["status"] == "refused", (rc, res, err)
        assert "token" in err, err
        assert src.status() == "running"

        rc, res, err = lmtest.run_livemig(["send", "--qmp", src.qmp_path, "--to", to, "--token-file", token,
                                           "--downtime", "300"])
        assert rc == 0 and res["status"] == "ok", (rc, res, err)
        out, rerr = recv.communicate(timeout=30)
        assert recv.returncode == 0, (out, rerr)
        gens = lmtest.check_destination(dst, seconds=4, reports=[res, lmtest.last_json(out)])
        print("ok: %s from QEMU, %s on the link (relay counted %s), %s ms, downtime %s ms, gens %s" % (
            res["bytes_from_qemu"], res["bytes_on_wire"], relay.total(), res["total_ms"], res["downtime_ms"],
            gens[-3:]))
    finally:
        if recv.poll() is None:
            recv.kill()
        if relay:
            relay.close()
        src.kill()
        dst.kill()


if __name__ == "__main__":
    sys.exit(lmtest.main_retrying_frozen_guest(main))
