#!/usr/bin/env python3
"""e2e: livemig --copy-storage between two private libvirtds on this one host.

Scenario "move": a libvirt domain whose root disk is a qcow2 overlay over the golden-guest
fixture image (Debian 12, TCG, serial console through `virsh console`) boots; a writer in the
guest writes files of random data, each with its sha256, synced and counted. Then
`livemig evacuate --libvirt SRC --copy-storage --undefine-source` moves it to
`livemig receive --libvirt DST --copy-storage --storage-dir STORE` while it writes. Afterwards:
the destination domain runs on STORE/root.qcow2 (a qcow2 overlay over the golden image at the
same path as on the source), the source domain is gone (not even defined), and in the guest,
with the writer stopped and the page cache dropped, every file written before, during and
after the move reads back with its sha256.

Scenario "failures": a memload domain (kernel boot, heartbeats on its serial log) with a
48 MiB data disk: a qcow2 overlay whose top holds 48 MiB of random data over a raw backing
file. Each failure leaves the source domain running (heartbeats rise, no CORRUPT), and on the
destination no domain and no file in the storage directory:
  1. the receiver sees another backing file at the same path (a bind mount in its own mount
     namespace): refused before anything is created, naming the file and "differs";
  2. the receiver does not see the backing file at all: refused, naming it;
  3. the link cut during the disk copy (relay);
  4. the destination's storage directory is on a 64 MiB tmpfs: with less free than the source's
     image takes, refused before anything is created, naming the directory and both sizes;
     filled up (by the test) once the copy began, the copy fails naming the file and "No space
     left on device";
  5. the receiver SIGKILLed during the disk copy: it cannot clean up, so its image stays; the
     next receiver refuses that name ("already exists", naming the file) before it creates
     anything.
"""
import errno
import json
import os
import shutil
import subprocess
import sys
import time

import lmtest
from harness.console import VirshConsole  # noqa: E402
from harness.fixtures import fixture  # noqa: E402
from harness.libvirtd import TCG_MIGRATABLE_EMULATOR, PrivateLibvirtd, emulator_xml, kernel_domain_xml  # noqa: E402
from harness.qemu import TCG_MIGRATION_EXTRA_KIB  # noqa: E402
import test_livemig_libvirt as libvirt_test  # noqa: E402
from test_livemig_disks import read_back, wait_count_beyond  # noqa: E402
from test_livemig_libvirt import Log, all_domains, finish_receiver, state, text, wait_gone, wait_heartbeat  # noqa: E402

GUEST_MIB = 512


def golden_domain_xml(name, overlay):
    # The emulator keeps the guest's RAM off QEMU 7.2's TCG dirty-bitmap bug
    # (harness/qemu_tcg_migratable.py), whose stale pages showed as frozen or
    # crashed destinations (and, most likely, as the file that read back wrong
    # in one CI run: a stale page of its metadata).
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{GUEST_MIB}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>{emulator_xml(True)}
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/><source file='{overlay}'/><target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def assert_ram_off_tcg_bug(lv, name, what):
    """The domain's QEMU has GUEST_MIB plus TCG_MIGRATION_EXTRA_KIB of RAM: the emulator applied."""
    out = lv.virsh("qemu-monitor-command", name, '{"execute":"query-memory-size-summary"}')
    base = json.loads(out)["return"]["base-memory"]
    want = (GUEST_MIB << 20) + (TCG_MIGRATION_EXTRA_KIB << 10)
    assert base == want, "%s: QEMU has %d B of RAM, not %d (is the emulator %s?)" % (
        what, base, want, TCG_MIGRATABLE_EMULATOR)


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def image_info(path):
    return json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", path], check=True,
                                     capture_output=True, text=True).stdout)


def start_receiver(lv, token, work, tag, store, prefix=()):
    """`receive --libvirt --copy-storage --storage-dir store` on lv; returns (process, port)."""
    return libvirt_test.start_receiver(lv, token, work, tag, extra=("--copy-storage", "--storage-dir", store),
                                       prefix=prefix)


def clean_up(procs, libvirtds, work, unmount=None):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for lv in libvirtds:
        lv.stop()
    if unmount:
        subprocess.run(["umount", unmount], capture_output=True)
    if os.environ.get("UTSUSHI_KEEP_TMP") != "1":
        shutil.rmtree(work, ignore_errors=True)


def send(src_lv, name, port, token, *extra):
    return subprocess.Popen([lmtest.LIVEMIG, "--json", "send", "--libvirt", src_lv.uri, "--domain", name, "--to",
                             "127.0.0.1:%d" % port, "--token-file", token, "--copy-storage", "all", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ---- scenario "move" ----

def progress(what):
    print(time.strftime("%H:%M:%S ") + what, flush=True)


def move():
    golden = fixture("golden-guest")["path"]
    work, token = lmtest.workdir_with_token("libvirt-copy-storage-token-0001")
    src_lv, dst_lv = PrivateLibvirtd(work), PrivateLibvirtd(work)
    store = os.path.join(work, "store")
    os.makedirs(os.path.join(work, "src"))
    os.makedirs(store)
    overlay = os.path.join(work, "src", "root.qcow2")
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", golden, overlay)
    consoles, procs = [], []
    name = "lm-disk"
    try:
        src_lv.start()
        dst_lv.start()
        xml = os.path.join(work, name + ".xml")
        with open(xml, "w") as f:
            f.write(golden_domain_xml(name, overlay))
        src_lv.virsh("define", xml)
        src_lv.virsh("start", name)
        t0 = time.monotonic()
        con = VirshConsole(src_lv.uri, name)
        consoles.append(con)
        con.login(timeout=300)
        boot = time.monotonic() - t0
        progress("source logged in after %.0f s" % boot)
        assert_ram_off_tcg_bug(src_lv, name, "source")
        status, out = con.run("mkdir -p /data && dd if=/dev/urandom of=/data/bulk bs=1M count=16 status=none && "
                              "sync && sha256sum /data/bulk > /data/bulk.sum && echo 0 > /data/count", timeout=300)
        assert status == 0, out
        con.run("(i=0; while true; do i=$((i+1)); dd if=/dev/urandom of=/data/f$i bs=64k count=4 status=none; "
                "sha256sum /data/f$i > /data/f$i.sum; sync; echo $i > /data/count; sleep 0.2; done) "
                ">/dev/null 2>&1 & echo $! > /run/writer.pid")
        before = wait_count_beyond(con, 2, "source")
        progress("writer runs (%d files)" % before)

        recv, port = start_receiver(dst_lv, token, work, "move", store)
        procs.append(recv)
        t1 = time.monotonic()
        rc, res, err = lmtest.run_livemig(["evacuate", "--libvirt", src_lv.uri, "--to", "127.0.0.1:%d" % port,
                                           "--token-file", token, "--copy-storage", "--no-measure",
                                           "--undefine-source", "--bandwidth", "32M", "--downtime", "300"],
                                          timeout=300)
        took = time.monotonic() - t1
        progress("evacuate took %.1f s" % took)
        rrc, rsum, rerr = finish_receiver(recv)
        assert rc == 0 and res and res["status"] == "ok" and res["migrated"] == 1, (rc, res, err, rsum, rerr)
        g = res["guests"][0]
        assert g["status"] == "ok" and g["source_state"] == "undefined", g
        assert rrc == 0 and rsum and rsum["status"] == "ok", (rrc, rsum, rerr)
        assert name not in all_domains(src_lv), src_lv.virsh("list", "--all")
        assert state(dst_lv, name) == "running", state(dst_lv, name)
        assert_ram_off_tcg_bug(dst_lv, name, "destination")
        moved = os.path.join(store, "root.qcow2")
        info = image_info(moved)
        assert info["format"] == "qcow2" and info["virtual-size"] == image_info(golden)["virtual-size"], info
        assert info.get("full-backing-filename") == golden, info
        assert moved in dst_lv.virsh("dumpxml", name), "the destination domain does not run on " + moved
        d, rd = g["disks"][0], rsum["sessions"][0]["disks"][0]
        assert d["file"] == overlay and rd["file"] == moved, (d, rd)
        assert d["hash"] == rd["hash"] and d["backing_bytes"] > 500 << 20, (d, rd)

        consoles.pop().close()
        con = VirshConsole(dst_lv.uri, name)
        consoles.append(con)
        # Keys typed before virsh is attached are lost: wait for it, then for the shell's prompt.
        con.wait_for("Escape character", 60)
        mark = con.serial_mark()
        con.send_serial("\n")
        try:
            con.wait_for("# ", 120, since=mark)
        except TimeoutError as e:
            # The disks' hashes matched above: a guest that answers nothing now is the frozen
            # or crashed migrated guest of QEMU 7.2 TCG (its console attached after it printed).
            raise lmtest.DestinationSilent("destination: no shell prompt on its console after the move "
                                           "(%s)" % str(e).splitlines()[0]) from None
        progress("destination console ready")
        after, checked = read_back(con, before)
        print("ok: boot+login %.0f s; evacuate --copy-storage %.1f s (total_ms %d, downtime %d ms); disk %d B "
              "allocated, %d B in the golden (not sent), %d data B sent, %d on the link; files: %d before, %d "
              "after; %d read back, 0 bad" % (boot, took, g["total_ms"], g["downtime_ms"], d["allocated_bytes"],
                                               d["backing_bytes"], d["data_bytes"], d["wire_bytes"], before,
                                               after, checked), flush=True)
    finally:
        for c in consoles:
            c.close()
        clean_up(procs, (dst_lv, src_lv), work)


# ---- scenario "failures" ----

def data_disk(work):
    """A 48 MiB qcow2 overlay whose top holds 48 MiB of random data, over a raw backing file in
    work/base/. Returns (overlay, backing)."""
    os.makedirs(os.path.join(work, "base"))
    base = os.path.join(work, "base", "base.raw")
    with open(base, "wb") as f:
        f.truncate(48 << 20)
        f.seek(1 << 20)
        f.write(os.urandom(1 << 20))
    rnd = os.path.join(work, "random.raw")
    with open(rnd, "wb") as f:
        f.write(os.urandom(48 << 20))
    top = os.path.join(work, "src", "data.qcow2")
    os.makedirs(os.path.dirname(top))
    sh("qemu-img", "convert", "-O", "qcow2", rnd, top)
    sh("qemu-img", "rebase", "-u", "-F", "raw", "-b", base, top)
    os.unlink(rnd)
    return top, base


def memload_domain_xml(name, serial, kernel, initrd, disk):
    append = (os.environ.get("LIVEMIG_TEST_APPEND", "pti=on") + " " + lmtest.BASE_APPEND +
              " memload.mib=32 memload.rate=8 memload.verify=32 memload.pattern=hotset")
    xml = kernel_domain_xml(name, kernel, initrd, append, 128, serial, migratable=True)
    xml = xml.replace("<source path='%s'/>" % serial, "<source path='%s' append='on'/>" % serial)
    return xml.replace("<devices>", "<devices>\n    <disk type='file' device='disk'><driver name='qemu' "
                       "type='qcow2'/><source file='%s'/><target dev='vda' bus='virtio'/></disk>" % disk)


def source_runs_destination_clean(src_lv, dst_lv, name, log, store, what):
    mark = len(text(log))
    assert state(src_lv, name) == "running", (what, state(src_lv, name))
    wait_gone(dst_lv, name)
    assert os.listdir(store) == [], "%s: files left in the storage directory: %s" % (what, os.listdir(store))
    lmtest.check_destination(Log(log), seconds=3, since=mark)


def refused_by_receiver(src_lv, dst_lv, token, work, store, name, tag, prefix):
    recv, port = start_receiver(dst_lv, token, work, tag, store, prefix=prefix)
    p = send(src_lv, name, port, token)
    out, err = lmtest.communicate(p, 120, "sender (%s)" % tag)
    rrc, rsum, rerr = finish_receiver(recv)
    res = lmtest.last_json(out)
    assert p.returncode != 0 and res and res["status"] == "refused" and res["source_state"] == "untouched", (
        tag, p.returncode, out, err)
    assert rrc == 1 and rsum and rsum["sessions"][0]["status"] == "refused", (tag, rrc, rsum, rerr)
    return res["error"]


def fill_leaving(mount, filler, free):
    """Allocates `filler` on the filesystem at `mount` so that about `free` bytes stay free
    (tried again, smaller, when a copy that runs meanwhile took the space first)."""
    for _ in range(5):
        st = os.statvfs(mount)
        size = st.f_bavail * st.f_frsize - free
        assert size > 0, (mount, st)
        with open(filler, "wb") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, size)
                return
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                f.truncate(0)
    raise AssertionError("could not fill %s" % mount)


def wait_copying(dst_lv, name, image, sender, timeout=60):
    """Waits until the receiver created `image` and defined the domain (the disk copy runs)."""
    deadline = time.monotonic() + timeout
    while not (os.path.exists(image) and name in all_domains(dst_lv)):
        assert time.monotonic() < deadline and sender.poll() is None, ("no disk copy", sender.poll())
        time.sleep(0.1)


def failed_move(src_lv, name, port, token, *extra):
    p = send(src_lv, name, port, token, *extra)
    out, err = lmtest.communicate(p, 180, "sender")
    res = lmtest.last_json(out)
    assert p.returncode != 0 and res and res["status"] == "failed", (p.returncode, out, err)
    assert res["source_state"] == "running", res
    return res


def failures():
    work, token = lmtest.workdir_with_token("libvirt-copy-storage-token-0002")
    kernel, initrd = lmtest.memload_fixture()
    top, base = data_disk(work)
    store = os.path.join(work, "store")
    small = os.path.join(work, "small")
    os.makedirs(store)
    os.makedirs(small)
    # Mounted before the destination libvirtd starts: its mount namespace is a copy.
    sh("mount", "-t", "tmpfs", "-o", "size=64m", "utsushi-small", small)
    small_store, filler = os.path.join(small, "store"), os.path.join(small, "filler")
    os.makedirs(small_store)
    src_lv, dst_lv = PrivateLibvirtd(work), PrivateLibvirtd(work)
    name, log = "lm-data", os.path.join(work, "lm-data.serial")
    procs, errors, timings = [], {}, {}
    try:
        src_lv.start()
        dst_lv.start()
        xml = os.path.join(work, name + ".xml")
        with open(xml, "w") as f:
            f.write(memload_domain_xml(name, log, kernel, initrd, top))
        src_lv.virsh("define", xml)
        src_lv.virsh("start", name)
        wait_heartbeat(log)

        # 1. Another backing file at the same path on the receiver's side.
        t0 = time.monotonic()
        other = os.path.join(work, "other.raw")
        shutil.copy(base, other)
        with open(other, "r+b") as f:
            f.seek(30 << 20)
            f.write(b"not the same content")
        ns = ("unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" "$1" && shift && '
              'exec "$@"', other, base)
        e = refused_by_receiver(src_lv, dst_lv, token, work, store, name, "differs", ns)
        assert base in e and "differs" in e, e
        source_runs_destination_clean(src_lv, dst_lv, name, log, store, "backing differs")
        errors["differs"], timings["differs"] = e, time.monotonic() - t0

        # 2. No backing file on the receiver's side (its directory hidden under an empty tmpfs).
        t0 = time.monotonic()
        ns = ("unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount -t tmpfs none "$0" && exec "$@"',
              os.path.dirname(base))
        e = refused_by_receiver(src_lv, dst_lv, token, work, store, name, "missing", ns)
        assert base in e and "cannot be read" in e, e
        source_runs_destination_clean(src_lv, dst_lv, name, log, store, "backing missing")
        errors["missing"], timings["missing"] = e, time.monotonic() - t0

        # 3. The link cut during the disk copy.
        t0 = time.monotonic()
        recv, port = start_receiver(dst_lv, token, work, "cut", store)
        procs.append(recv)
        relay = lmtest.Relay(port, rate=8 << 20, cut_after=16 << 20)
        res = failed_move(src_lv, name, relay.port, token)
        relay.close()
        rrc, rsum, rerr = finish_receiver(recv)
        assert rrc == 1 and rsum["sessions"][0]["source_state"] == "discarded", (rrc, rsum, rerr)
        assert res["disk_phases"][0]["phase"] == "bulk", res
        source_runs_destination_clean(src_lv, dst_lv, name, log, store, "link cut")
        errors["cut"], timings["cut"] = res["error"], time.monotonic() - t0

        # 4a. Less free space than the source's image takes: refused before anything is created.
        t0 = time.monotonic()
        fill_leaving(small, filler, 24 << 20)
        e = refused_by_receiver(src_lv, dst_lv, token, work, small_store, name, "short", ())
        assert small_store in e and "free" in e and "take" in e, e
        os.unlink(filler)
        source_runs_destination_clean(src_lv, dst_lv, name, log, small_store, "short of space")
        errors["short"], timings["short"] = e, time.monotonic() - t0

        # 4b. The destination's disk fills up during the copy.
        t0 = time.monotonic()
        recv, port = start_receiver(dst_lv, token, work, "full", small_store)
        procs.append(recv)
        p = send(src_lv, name, port, token, "--bandwidth", "4M")
        procs.append(p)
        wait_copying(dst_lv, name, os.path.join(small_store, "data.qcow2"), p)
        fill_leaving(small, filler, 2 << 20)
        out, err = lmtest.communicate(p, 120, "sender (disk full)")
        res = lmtest.last_json(out)
        assert p.returncode != 0 and res and res["status"] == "failed" and res["source_state"] == "running", (
            out, err)
        rrc, rsum, rerr = finish_receiver(recv)
        rerror = rsum["sessions"][0]["error"] if rsum else rerr
        for e in (res["error"], rerror):
            assert "No space left on device" in e and os.path.join(small_store, "data.qcow2") in e, (res, rsum, rerr)
        os.unlink(filler)
        source_runs_destination_clean(src_lv, dst_lv, name, log, small_store, "disk full")
        errors["full"], timings["full"] = res["error"], time.monotonic() - t0

        # 5. The receiver killed during the disk copy: its image stays, the next receiver refuses it.
        t0 = time.monotonic()
        recv, port = start_receiver(dst_lv, token, work, "kill", store)
        procs.append(recv)
        p = send(src_lv, name, port, token, "--bandwidth", "4M")
        procs.append(p)
        left = os.path.join(store, "data.qcow2")
        wait_copying(dst_lv, name, left, p)
        time.sleep(2)
        recv.kill()
        recv.wait()
        out, err = lmtest.communicate(p, 120, "sender (receiver killed)")
        res = lmtest.last_json(out)
        assert p.returncode != 0 and res and res["status"] == "failed" and res["source_state"] == "running", (
            out, err)
        wait_gone(dst_lv, name)
        assert os.listdir(store) == ["data.qcow2"], os.listdir(store)
        e = refused_by_receiver(src_lv, dst_lv, token, work, store, name, "leftover", ())
        assert left in e and "already exists" in e, e
        assert os.listdir(store) == ["data.qcow2"], os.listdir(store)
        os.unlink(left)
        source_runs_destination_clean(src_lv, dst_lv, name, log, store, "receiver killed")
        errors["kill"], errors["leftover"] = res["error"], e
        timings["kill"] = time.monotonic() - t0
        print("ok: backing differs, backing missing, link cut, short of space, disk full, receiver killed + "
              "leftover refused; "
              "seconds %s" % {k: round(v, 1) for k, v in timings.items()})
        for k, v in errors.items():
            print("  %s: %s" % (k, v))
    finally:
        clean_up(procs, (dst_lv, src_lv), work, unmount=small)


if __name__ == "__main__":
    scenario = sys.argv[1] if len(sys.argv) > 1 else "move"
    sys.exit(lmtest.main_retrying_frozen_guest({"move": move, "failures": failures}[scenario]))
