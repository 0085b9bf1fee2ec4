#!/usr/bin/env python3
"""e2e (issue 16 item 11): `livemig receive` outlives any number of bad peers. Before a real
sender, 1000 connections are refused (wrong token, another protocol, garbage, closed at once),
then 200 stay idle and one trickles a byte a second; the real sender still authenticates at once
and migrates the guest, while the receiver's threads and memory (VmSize, VmRSS) stay flat."""
import os
import socket
import subprocess
import sys
import time

import lmtest

from harness.linkpeer import Peer, proc_status  # noqa: E402

TOKEN = "correct-horse-battery-staple-0001"


def refused(port, i):
    """One bad peer; returns once the receiver has dealt with it."""
    if i % 4 == 0:
        p = Peer(port)
        try:
            p.handshake("livemig", 5, "not-the-right-token-at-all-xx")
            raise AssertionError("a wrong token was accepted")
        except (PermissionError, ConnectionError, OSError):
            pass
        p.close()
    elif i % 4 == 1:
        p = Peer(port)
        try:
            p.handshake("p2v", 2, TOKEN)
            raise AssertionError("a p2v client was accepted")
        except (PermissionError, ConnectionError, OSError) as e:
            assert "livemig" in str(e) or isinstance(e, (ConnectionError, OSError)), e
        p.close()
    elif i % 4 == 2:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\x02\x00" + os.urandom(300))  # a TLS hello, say
            s.settimeout(10)
            try:
                s.recv(100)
            except OSError:
                pass
    else:
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


def main():
    work = lmtest.workdir()
    token = os.path.join(work, "token")
    with open(os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(TOKEN + "\n")
    src, dst = lmtest.guest_pair(work, mib=64, rate=4, pattern="hotset", update="sparse", content="half")
    port_file = os.path.join(work, "port")
    recv = subprocess.Popen([lmtest.LIVEMIG, "--json", "receive", "--listen", "127.0.0.1:0", "--qmp", dst.qmp_path,
                             "--token-file", token, "--port-file", port_file, "--accept-timeout", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    crowd = []
    try:
        for _ in range(600):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        port = int(open(port_file).read())
        start = proc_status(recv.pid)
        t0 = time.monotonic()
        for i in range(1000):
            if i == 200:
                # Warmed up: the accept loop's threads and malloc's per-thread arenas exist now; from
                # here on nothing may grow with the number of peers.
                base = proc_status(recv.pid)
            refused(port, i)
            assert recv.poll() is None, "the receiver exited after %d bad peers" % i
        after_refused = proc_status(recv.pid)
        for _ in range(200):
            crowd.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        trickler = socket.create_connection(("127.0.0.1", port), timeout=10)
        trickler.sendall(bytes.fromhex("55544c4b01f0"))
        crowd.append(trickler)
        time.sleep(1)
        with_crowd = proc_status(recv.pid)
        print("receiver: start %s, after 200 refused %s, after 1000 refused (%.1f s) %s, with 200 idle %s" % (
            start, base, time.monotonic() - t0, after_refused, with_crowd))
        # 800 more refused connections: no growth (before the link layer each left a thread: +8 MiB
        # of VmSize per connection).
        assert after_refused["Threads"] <= base["Threads"] + 8, (base, after_refused)
        assert after_refused["VmSize"] - base["VmSize"] < 128 * 1024, (base, after_refused)  # kB
        assert after_refused["VmRSS"] - base["VmRSS"] < 32 * 1024, (base, after_refused)
        # 200 idle connections: at most the accept loop's bound of handshakes (32) hold a thread.
        assert with_crowd["Threads"] < start["Threads"] + 40, (start, with_crowd)
        assert with_crowd["VmRSS"] - start["VmRSS"] < 128 * 1024, (start, with_crowd)
        t1 = time.monotonic()
        rc, res, err = lmtest.run_livemig(["send", "--qmp", src.qmp_path, "--to", "127.0.0.1:%d" % port,
                                           "--token-file", token])
        assert rc == 0 and res["status"] == "ok", (rc, res, err)
        out, rerr = recv.communicate(timeout=60)
        assert recv.returncode == 0, (out, rerr)
        lmtest.check_destination(dst, seconds=3, reports=[res, lmtest.last_json(out)])
        print("ok: migrated in %.1f s beside 200 idle connections (total %s ms)" % (time.monotonic() - t1,
                                                                                   res["total_ms"]))
    finally:
        for s in crowd:
            s.close()
        if recv.poll() is None:
            recv.kill()
        src.kill()
        dst.kill()


if __name__ == "__main__":
    sys.exit(lmtest.main_retrying_frozen_guest(main))
