#!/usr/bin/env python3
"""clone create refuses bad input with nothing created, and survives SIGKILL (issue 13).

Bad input, each a clear error with its documented exit status and nothing created (no
domain, no volume, no pool directory, no staging left):
- a golden without an operating system (an empty disk)            -> 3 (unsupported)
- a golden domain that is running                                  -> 4 (precondition)
- an image golden a running domain writes                          -> 4
- an address range too small for the count                         -> 2 (usage)
- an unknown operation                                             -> 2
- a name that exists and was not made by clone                     -> 4
- clone destroy of that foreign domain                              -> 4, and it stays

Kill: `clone create --count 5` is SIGKILLed once the second clone is complete; the
re-run of the same command completes the rest: 5 complete clones, each with its disk,
none twice, nothing else in the pool, no staging directory left.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clonetest as ct  # noqa: E402
from harness.guestfs import guestfs_env  # noqa: E402
from harness.libvirtd import PrivateLibvirtd  # noqa: E402

SMALL_DOMAIN = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{disk}'/>
<target dev='vda' bus='virtio'/></disk><memballoon model='none'/></devices></domain>
"""


def main():
    if os.geteuid() != 0:
        print("SKIP: a private libvirtd needs root")
        return 0
    facts = ct.golden_fixture()
    work = ct.tmpdir("clone-recovery-")
    try:
        with PrivateLibvirtd() as lv:
            bad_input(lv, facts, work)
            killed(lv, facts, work)
    finally:
        if os.environ.get("UTSUSHI_KEEP_TMP") != "1":
            shutil.rmtree(work, ignore_errors=True)
    return 0


def nothing_created(lv, work, pool, expected_domains, what):
    domains = sorted(lv.virsh("list", "--all", "--name").split())
    staging = [d for d in os.listdir(os.path.join(work, "w")) if d.startswith("run-")] \
        if os.path.isdir(os.path.join(work, "w")) else []
    ct.check(domains == sorted(expected_domains) and not os.path.exists(pool) and staging == [],
             f"{what}: nothing was created (domains {domains}, pool {os.path.exists(pool)}, staging {staging})")


def bad_input(lv, facts, work):
    pool = os.path.join(work, "pool")
    common = ["--connect", lv.uri, "--pool", pool, "--network", "user", "--work-dir", os.path.join(work, "w")]
    empty = os.path.join(work, "empty.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", empty, "1G"], check=True)
    busy = os.path.join(work, "busy.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", busy, "64M"], check=True)
    # A domain of the user's, named like a clone would be, and a running one.
    for name, disk in (("running-golden", busy), ("web-02", empty)):
        lv.virsh("define", ct.write_file(work, name + ".xml", SMALL_DOMAIN.format(name=name, disk=disk)))
    lv.virsh("start", "--paused", "running-golden")
    domains = ["running-golden", "web-02"]
    cases = [
        ("a golden without an operating system", [empty, "--count", "2"], 3, "no operating system"),
        ("a running golden domain", ["domain:running-golden", "--count", "2"], 4, "running"),
        ("an image golden a running domain writes", [busy, "--count", "2"], 4, "in use"),
        ("an address range too small", [facts["path"], "--count", "3", "--ip", "10.0.2.253/24"], 2, "too small"),
        ("an unknown operation", [facts["path"], "--count", "2", "--operations", "machine-id,bogus"], 2, "bogus"),
        ("a name that exists", [facts["path"], "--count", "3", "--name-pattern", "web-{n:02}"], 4, "web-02"),
    ]
    for what, args, status, words in cases:
        rc, result, _, err = ct.run_clone("create", *args, *common)
        ct.check(rc == status and result and words in result["error"]["message"],
                 f"{what}: exit {rc} (want {status}), {result['error']['message'] if result else err[-500:]}")
        nothing_created(lv, work, pool, domains, what)
    rc, result, _, err = ct.run_clone("destroy", "web-02", "--connect", lv.uri)
    ct.check(rc == 4 and "not made by clone" in result["error"]["message"], "clone destroy refuses a foreign domain")
    ct.check("web-02" in lv.virsh("list", "--all", "--name").split(), "the foreign domain stays")
    lv.virsh("destroy", "running-golden")
    for d in domains:
        lv.virsh("undefine", d)


def killed(lv, facts, work):
    pool = os.path.join(work, "pool")
    args = [os.path.join(os.path.dirname(ct.BIN), "clone"), "--json", "create", facts["path"], "--count", "5",
            "--name-pattern", "k-{n}", "--connect", lv.uri, "--pool", pool, "--network", "user",
            "--work-dir", os.path.join(work, "w")]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=guestfs_env(),
                            start_new_session=True)
    complete = 0
    for line in proc.stdout:
        if json.loads(line).get("event", "").startswith("complete"):
            complete += 1
            if complete == 2:
                os.killpg(proc.pid, signal.SIGKILL)  # clone and the helpers it started
                break
    proc.wait()
    ct.check(proc.returncode == -signal.SIGKILL, f"clone create was killed after 2 clones ({proc.returncode})")
    before = sorted(lv.virsh("list", "--all", "--name").split())
    ct.check(before[:2] == ["k-1", "k-2"] and len(before) <= 3, f"at most one clone was in the making ({before})")
    rc, result, _, err = ct.run_clone("create", *args[3:])
    ct.check(rc == 0, f"the re-run completes{'' if rc == 0 else err[-3000:]}")
    states = {c["name"]: c["state"] for c in result["clones"]}
    ct.check(states["k-1"] == states["k-2"] == "existing" and states["k-5"] == "created",
             f"the re-run kept the complete clones and made the rest ({states})")
    names = [f"k-{n}" for n in range(1, 6)]
    ct.check(sorted(lv.virsh("list", "--all", "--name").split()) == names, "5 domains, none twice")
    for n in names:
        ct.check("<utsushi:entry key='state'>complete</utsushi:entry>" in lv.virsh("dumpxml", n).replace('"', "'"),
                 f"{n}: marked complete")
    files = sorted(os.listdir(pool))
    clones = [f for f in files if f.startswith("k-")]
    ct.check(clones == [n + ".qcow2" for n in names] and len(files) == 7,
             f"the pool holds the 5 disks, the golden and its mark, nothing else ({files})")
    ct.check([d for d in os.listdir(os.path.join(work, "w")) if d.startswith("run-")] == [],
             "no staging directory is left, the killed run's included")
    rc, _, _, err = ct.run_clone("destroy", "k-*", "--connect", lv.uri)
    ct.check(rc == 0 and os.listdir(pool) == [], f"destroyed to nothing{'' if rc == 0 else err}")


if __name__ == "__main__":
    sys.exit(main())
