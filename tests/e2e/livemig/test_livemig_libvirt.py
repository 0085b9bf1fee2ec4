#!/usr/bin/env python3
"""e2e: `livemig evacuate --libvirt` empties a libvirt host into another one.

Two private libvirtds (source host, destination host), four memload guests
defined and started on the source; one of them is then paused. The
destination already has a domain named like the third guest, so that guest's
move must be refused: it stays running on the source and is reported. One
`livemig receive --libvirt --sessions 3 --persistent` serves the whole
evacuation; `livemig evacuate --libvirt --parallel 2` moves two guests at a
time. Afterwards:
  - the two moved guests run on the destination libvirt (virsh domstate),
    persistently defined there, their heartbeats rise and never say CORRUPT,
    and their downtime was measured (QEMU's STOP and RESUME events arrived
    through libvirt for both concurrent migrations);
  - their source domains are shut off and still defined (no --undefine-source);
  - the paused guest is reported as skipped and is still paused on the source;
  - the refused guest still runs on the source with rising heartbeats, and the
    destination's own domain of that name is untouched;
  - evacuate exits 1 with status "partial", receive reports the refusal too.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import lmtest

sys.path.insert(0, os.path.join(lmtest.SOURCE, "tests", "harness"))
from libvirtd import PrivateLibvirtd, kernel_domain_xml  # noqa: E402

GUESTS = ("lm-a", "lm-b", "lm-c")   # lm-c's name is taken on the destination
PAUSED = "lm-d"                      # paused before the evacuation: skipped
MIB, RAM = 40, 160                   # 4 sources + 2 destinations at once: 960 MiB


def domain_xml(name, serial, kernel, initrd):
    append = (os.environ.get("LIVEMIG_TEST_APPEND", "pti=on") +
              " console=ttyS0 panic=-1 memload.mib=%d memload.rate=8 memload.verify=32 memload.pattern=hotset" % MIB)
    xml = kernel_domain_xml(name, kernel, initrd, append, RAM, serial)
    # Both hosts write the same log (like shared storage): append, never truncate.
    return xml.replace("<source path='%s'/>" % serial, "<source path='%s' append='on'/>" % serial)


def text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def wait_heartbeat(path, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if re.search(r"memload ok gen=", text(path)):
            return
        time.sleep(0.2)
    raise TimeoutError("%s: no memload heartbeat within %ss:\n%s" % (path, timeout, text(path)[-1500:]))


class Log:
    """The serial log of one guest, shaped for lmtest.check_destination."""

    def __init__(self, path):
        self.path = path

    def text(self):
        return text(self.path)


def state(lv, name):
    return lv.virsh("domstate", name).strip()


def main():
    work = tempfile.mkdtemp(prefix="livemig-libvirt-")
    token = os.path.join(work, "token")
    with open(os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write("libvirt-evacuation-token-0001\n")
    kernel, initrd = lmtest.memload_fixture()
    src_lv, dst_lv = PrivateLibvirtd(work), PrivateLibvirtd(work)
    recv = None
    try:
        src_lv.start()
        dst_lv.start()
        logs = {}
        for name in GUESTS + (PAUSED,):
            logs[name] = os.path.join(work, name + ".serial")
            path = os.path.join(work, name + ".xml")
            with open(path, "w") as f:
                f.write(domain_xml(name, logs[name], kernel, initrd))
            src_lv.virsh("define", path)
            src_lv.virsh("start", name)
        # The destination already knows a domain called lm-c (defined, not running).
        taken = os.path.join(work, "taken.xml")
        with open(taken, "w") as f:
            f.write(domain_xml("lm-c", os.path.join(work, "taken.serial"), kernel, initrd))
        dst_lv.virsh("define", taken)
        for name in GUESTS + (PAUSED,):
            wait_heartbeat(logs[name])
        src_lv.virsh("suspend", PAUSED)

        port_file = os.path.join(work, "port")
        recv = subprocess.Popen([lmtest.LIVEMIG, "--json", "receive", "--libvirt", dst_lv.uri, "--listen",
                                 "127.0.0.1:0", "--sessions", "3", "--persistent", "--token-file", token, "--port-file", port_file,
                                 "--accept-timeout", "300"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(200):
            if os.path.exists(port_file) or recv.poll() is not None:
                break
            time.sleep(0.05)
        assert os.path.exists(port_file), ("receive is not listening", recv.poll(), recv.stderr.read())
        port = int(open(port_file).read())
        started = time.time()
        rc, res, err = lmtest.run_livemig(["evacuate", "--libvirt", src_lv.uri, "--to", "127.0.0.1:%d" % port,
                                           "--parallel", "2", "--token-file", token, "--downtime", "300"],
                                          timeout=400)
        took = time.time() - started
        marks = {name: len(text(logs[name])) for name in GUESTS}
        assert rc == 1 and res and res["status"] == "partial", (rc, res, err)
        by_name = {g["domain"]: g for g in res["guests"]}
        assert sorted(by_name) == sorted(GUESTS + (PAUSED,)), res["guests"]
        for name in ("lm-a", "lm-b"):
            g = by_name[name]
            assert g["status"] == "ok" and g["source_state"] == "destroyed", g
            assert g["destination"] == "127.0.0.1:%d" % port, g
            assert 0 < g["downtime_ms"] < 10000, g
        skipped = by_name[PAUSED]
        assert skipped["status"] == "skipped" and "paused" in skipped["error"], skipped
        refused = by_name["lm-c"]
        assert refused["status"] == "refused" and "already exists" in refused["error"], refused
        assert refused["source_state"] == "untouched", refused
        assert res["migrated"] == 2 and res["failed"] == 1 and res["skipped"] == 1, res

        out, rerr = recv.communicate(timeout=60)
        rres = [l for l in out.splitlines() if l.startswith("{")]
        assert recv.returncode == 1 and rres, (recv.returncode, out, rerr)
        summary = json.loads(rres[-1])
        assert summary["status"] == "partial" and summary["received"] == 2 and summary["failed"] == 1, summary

        for name in ("lm-a", "lm-b"):
            assert state(dst_lv, name) == "running", (name, state(dst_lv, name))
            assert state(src_lv, name) == "shut off", (name, state(src_lv, name))
            assert "Persistent:     yes" in dst_lv.virsh("dominfo", name), dst_lv.virsh("dominfo", name)
        assert state(src_lv, "lm-c") == "running"
        assert state(src_lv, PAUSED) == "paused"
        assert state(dst_lv, "lm-c") == "shut off", "the destination's own lm-c must be untouched"
        assert "lm-a" in src_lv.virsh("list", "--all", "--name").split(), "source definitions are kept"
        gens = {}
        for name in GUESTS:
            # Moved guests on the destination, lm-c on the source: all keep going.
            gens[name] = lmtest.check_destination(Log(logs[name]), seconds=0 if gens else 4, since=marks[name])
        print("ok: evacuated lm-a, lm-b in %.1f s (downtimes %s ms), lm-c refused and still running; gens %s" % (
            took, [by_name[n]["downtime_ms"] for n in ("lm-a", "lm-b")], {n: g[-1] for n, g in gens.items()}))
    finally:
        if recv and recv.poll() is None:
            recv.kill()
        dst_lv.stop()
        src_lv.stop()
        if os.environ.get("UTSUSHI_KEEP_TMP") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(lmtest.main_retrying_frozen_guest(main))
