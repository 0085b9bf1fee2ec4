#!/usr/bin/env python3
"""e2e: the commit handshake (receiver "ready" -> sender "go" -> receiver `cont` -> "running").
  1. A destination started with -S (receive --hold): migrates, runs after "go", the source quits;
     both ends report the same stream hash.
  2. The relay drops the link instead of passing on "ready": the sender resumes the source (the
     guest keeps running there), the receiver discards the paused destination.
  3. The relay drops the link instead of passing on "running": the one ambiguous case; the sender
     leaves the source paused, reports "unknown" and names it; the destination runs.
  4. The destination QEMU is killed (SIGKILL) just before the relay passes on "go": starting it
     fails after the commit; the receiver finds it gone and answers "not started, discarded" (never
     a plain abort), and only on that answer does the sender resume the source.
"""
import os
import sys
import time

import lmtest

MIB = 96
READY, GO, RUNNING = 11, 12, 13


def destination(work, append, n):
    mem = MIB + int(os.environ.get("LIVEMIG_TEST_HEADROOM", "256"))
    return lmtest.Qemu(work, "dst%d" % n, mem, append, incoming=True, extra=("-S",))


def receiver(work, dst, token):
    return lmtest.start_receiver(work, dst, token, "--hold", "--go-timeout", "10")


def send(src, relay, token):
    return lmtest.run_livemig(["send", "--qmp", src.qmp_path, "--to", "127.0.0.1:%d" % relay.port,
                               "--token-file", token, "--keep-source"])


def migrate_losing(work, append, n, src, token, ftype, dsts, relays):
    """Migrates into a new held destination through a relay that cuts the link instead of passing on
    the receiver's frame `ftype`. Returns (dst, rc, sender result, sender stderr, receiver out, err)."""
    dst = destination(work, append, n)
    dsts.append(dst)
    recv, port = receiver(work, dst, token)
    relay = lmtest.Relay(port, rate=64 << 20, cut_before_frame=(False, lmtest.link_frame_cut(ftype)))
    relays.append(relay)
    rc, res, err = send(src, relay, token)
    out, rerr = recv.communicate(timeout=60)
    assert relay.cut_frame_seen, "the relay never saw frame type %d" % ftype
    return dst, rc, res, err, out, rerr


def main():
    work, token = lmtest.workdir_with_token("commit-handshake-token-0123456789")
    src, dst0 = lmtest.guest_pair(work, mib=MIB, rate=8, pattern="hotset", update="sparse", content="half")
    dst0.kill()
    append = " ".join(src.argv[src.argv.index("-append") + 1].split()[len(lmtest.BASE_APPEND.split()):])
    dsts, relays = [], []
    try:
        # 2. "ready" lost: source resumed, destination discarded.
        dst, rc, res, err, out, rerr = migrate_losing(work, append, 2, src, token, READY, dsts, relays)
        rres = lmtest.last_json(out)
        assert rc != 0 and res["status"] == "failed", (rc, res, err)
        assert "resumed" in res["error"], res
        assert res["source_state"] == "running", res
        lmtest.source_still_fine(src, "ready lost")
        assert rres["status"] == "failed" and rres["source_state"] == "discarded", (out, rerr)
        dst.proc.wait(timeout=20)  # the receiver quit the held destination
        print("ready lost: source resumed (%s); destination discarded: %s" % (res["error"], rres["error"]))

        # 4. The destination dies between "ready" and "go": after the commit, so the receiver must
        # say for sure that it did not start before the source may take the guest back.
        dst = destination(work, append, 4)
        dsts.append(dst)
        recv, port = receiver(work, dst, token)
        relay = lmtest.Relay(port, rate=64 << 20, hook_before_frame=(True, lmtest.link_frame_cut(GO), dst.kill))
        relays.append(relay)
        rc, res, err = send(src, relay, token)
        out, rerr = recv.communicate(timeout=60)
        rres = lmtest.last_json(out)
        assert relay.hook_ran and not dst.alive(), "the destination was not killed before 'go'"
        assert rc != 0 and res["status"] == "failed", (rc, res, err)
        assert "discarded" in res["error"] and "resumed" in res["error"], res
        assert res["source_state"] == "running", res
        lmtest.source_still_fine(src, "destination killed before go")
        assert recv.returncode != 0 and rres["status"] == "failed", (out, rerr)
        assert rres["source_state"] == "discarded" and "not started, discarded" in rres["error"], (out, rerr)
        print("destination killed before go: source resumed (%s); receiver: %s" % (res["error"], rres["error"]))

        # 3. "running" lost: ambiguous, reported as such; the destination runs.
        dst, rc, res, err, out, rerr = migrate_losing(work, append, 3, src, token, RUNNING, dsts, relays)
        assert rc != 0 and res["status"] == "unknown", (rc, res, err)
        assert "'go' was sent" in res["error"], res
        assert src.status() != "running", "source resumed although the destination may run"
        assert dst.status() == "running", dst.status()
        print("running lost: sender says %s: %s" % (res["status"], res["error"]))
        # The destination now owns the guest: continue the happy path from it.
        src.kill()
        src = dst
        dsts.remove(dst)

        # 1. The happy path into a -S destination.
        dst = destination(work, append, 1)
        dsts.append(dst)
        recv, port = receiver(work, dst, token)
        relay = lmtest.Relay(port, rate=32 << 20)
        relays.append(relay)
        rc, res, err = send(src, relay, token)
        out, rerr = recv.communicate(timeout=60)
        rres = lmtest.last_json(out)
        assert rc == 0 and res["status"] == "ok", (rc, res, err)
        assert recv.returncode == 0 and rres["status"] == "ok", (out, rerr)
        assert res["stream_hash"] == rres["stream_hash"] == res["dest_stream_hash"], (res, rres)
        assert dst.status() == "running"
        gens = lmtest.check_destination(dst, seconds=4, reports=[res, rres])
        print("held destination: ok after go, downtime %s ms, %s, gens %s" % (
            res["downtime_ms"], lmtest.stream_hashes(res, rres), gens[-3:]))
    finally:
        for r in relays:
            r.close()
        src.kill()
        for d in dsts:
            d.kill()


if __name__ == "__main__":
    sys.exit(lmtest.main_retrying_frozen_guest(main))
