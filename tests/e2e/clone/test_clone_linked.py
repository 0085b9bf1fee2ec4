#!/usr/bin/env python3
"""clone create: 8 linked clones of the golden into a private libvirtd (issue 13's proof).

- the report: 8 clones, each its own UUID, MAC, address, host name, machine id and host
  key fingerprints, its disk a volume in the pool; libvirt: 8 domains with those;
- the golden's checksum is unchanged (it is only ever a backing file);
- through libguestfs (one launch over the 8 disks): each clone has its machine id (the
  D-Bus id a link to it), its host name in /etc/hostname and /etc/hosts, its address in the
  golden's networkd file, the reported ed25519 key (private key 0600), a seed of its own,
  the authorized key and the password hash, the --run script's proof and the first-boot
  script; none of the golden's secrets, journal or DHCP lease;
- a re-run of the same names with --start skips them all (nothing redone) and starts 3
  with --start-batch; each reaches login: (the new root password) and reports from inside
  its host name, machine id, SSH fingerprint and address, all as reported and distinct;
  the first-boot script ran once;
- clone destroy 'web-*' leaves no domain and no file in the pool, and no staging behind.
"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clonetest as ct  # noqa: E402
from harness.console import VirshConsole  # noqa: E402
from harness.libvirtd import PrivateLibvirtd  # noqa: E402

COUNT = 8
BOOT = 3
PASSWORD = "clone-e2e-password"


def main():
    if os.geteuid() != 0:
        print("SKIP: a private libvirtd needs root")
        return 0
    facts = ct.golden_fixture()
    golden = facts["path"]
    golden_sum = ct.sha256_file(golden)
    work = ct.tmpdir("clone-linked-")
    try:
        with PrivateLibvirtd() as lv:
            run(lv, facts, golden, work)
        ct.check(ct.sha256_file(golden) == golden_sum, "the golden's checksum is unchanged")
    finally:
        if os.environ.get("UTSUSHI_KEEP_TMP") != "1":
            shutil.rmtree(work, ignore_errors=True)
    return 0


def run(lv, facts, golden, work):
    pool = os.path.join(work, "pool")
    key = ct.new_ssh_key(work)
    authorized = open(key).read().strip()
    password = ct.write_file(work, "password", PASSWORD + "\n")
    script = ct.write_file(work, "proof.sh", "cat /etc/hostname /etc/machine-id > /root/run-proof\n")
    firstboot = ct.write_file(work, "firstboot.sh", "cat /etc/machine-id > /root/firstboot-proof\n")
    common = ["--connect", lv.uri, "--pool", pool, "--network", "user", "--work-dir", os.path.join(work, "w")]
    t0 = time.monotonic()
    rc, result, events, err = ct.run_clone(
        "create", golden, "--count", str(COUNT), "--name-pattern", "web-{n:02}", "--hostname-pattern",
        "{name}.clone.test", "--ip", "10.0.2.21/24", "--gateway", "10.0.2.2", "--dns", "10.0.2.3", "--ssh-key", key,
        "--root-password-file", password, "--run", script, "--firstboot", firstboot, *common)
    ct.check(rc == 0, f"clone create --count {COUNT} succeeds ({time.monotonic() - t0:.0f} s){'' if rc == 0 else err[-3000:]}")
    clones = result["clones"]
    names = [f"web-{n:02}" for n in range(1, COUNT + 1)]
    ct.check([c["name"] for c in clones] == names, "the report lists the 8 clones in order")
    ct.check(all(c["state"] == "created" for c in clones), "all were created")
    for field in ("uuid", "mac", "address", "hostname", "machine-id"):
        ct.check(len({c[field] for c in clones}) == COUNT, f"each clone has its own {field}")
    ct.check([c["address"] for c in clones] == [f"10.0.2.{21 + i}/24" for i in range(COUNT)],
             "addresses come from the range in order")
    for t in ("rsa", "ecdsa", "ed25519"):
        ct.check(len({c["ssh-host-keys"][t] for c in clones}) == COUNT, f"each clone has its own {t} host key")
    ct.check(all(c["uri"] == lv.uri and c["disks"] == [os.path.join(pool, c["name"] + ".qcow2")] for c in clones),
             "each clone's disk is its volume in the pool, on the host it was defined on")
    completes = [e["subject"] for e in events if e.get("event", "").startswith("complete")]
    ct.check(completes == names, "progress reports each clone complete, in order")
    listed = lv.virsh("list", "--all", "--name").split()
    ct.check(sorted(listed) == names, "libvirt has the 8 domains")
    for c in clones[:2]:
        xml = lv.virsh("dumpxml", c["name"])
        ct.check(c["uuid"] in xml and c["mac"] in xml and "<utsushi:tool>clone</utsushi:tool>" in xml,
                 f"{c['name']}: its UUID, MAC and clone's mark in its definition")

    inside = ct.inspect_clones([c["disks"][0] for c in clones], facts)
    for c, g in zip(clones, inside):
        n = c["name"]
        ct.check(g["machine-id"].strip() == c["machine-id"], f"{n}: /etc/machine-id is the reported id")
        if facts.get("dbus_machine_id"):
            ct.check(g["dbus-link"].strip() == "true", f"{n}: the D-Bus machine id follows it (a link)")
        ct.check(g["hostname"].strip() == c["hostname"], f"{n}: /etc/hostname")
        ct.check(c["hostname"] in g["hosts"] and facts["hostname"] not in g["hosts"], f"{n}: /etc/hosts names it")
        ct.check(f"Address={c['address']}" in g["network"] and "Gateway=10.0.2.2" in g["network"],
                 f"{n}: its address in the golden's network file")
        if facts["network"].get("mac"):
            ct.check(c["mac"] in g["udev"] and facts["network"]["mac"] not in g["udev"],
                     f"{n}: the persistent-net rule follows its MAC")
        ct.check(ct.ssh_fingerprint(g["ed25519"]) == c["ssh-host-keys"]["ed25519"],
                 f"{n}: the ed25519 host key is the reported one")
        ct.check("mode: 33152" in g["key-mode"], f"{n}: the private host key is 0600")
        ct.check(g["run-proof"].split() == [c["hostname"], c["machine-id"]], f"{n}: --run ran inside it")
        ct.check("01-firstboot.sh" in g["firstboot"], f"{n}: the first-boot script is installed")
        ct.check(authorized in g["authorized"], f"{n}: the --ssh-key is authorized for root")
        ct.check(g["shadow-root"].startswith("root:$6$"), f"{n}: root's password is a SHA-512 hash")
        ct.check(g["leftovers"] == [], f"{n}: none of the golden's secrets or leases ({g['leftovers']})")
        ct.check(g["journal"].strip() == "", f"{n}: the golden's journal is gone")
    ct.check(len({g["seed"] for g in inside}) == COUNT, "each clone has its own random seed")

    # Re-run with the first names and --start: nothing redone, 3 started at once.
    rc, again, events, err = ct.run_clone("create", golden, "--names", ",".join(names[:BOOT]), "--start",
                                          "--start-batch", str(BOOT), *common)
    ct.check(rc == 0, f"the re-run with --start succeeds{'' if rc == 0 else err[-2000:]}")
    ct.check([c["state"] for c in again["clones"]] == ["existing"] * BOOT and all(c["started"] for c in again["clones"]),
             "the re-run skips the existing clones and starts them")
    ct.check([c["ssh-host-keys"] for c in again["clones"]] == [c["ssh-host-keys"] for c in clones[:BOOT]],
             "the re-run reports the existing clones as they were made")
    seen = {}
    for c in clones[:BOOT]:
        with VirshConsole(lv.uri, c["name"]) as con:
            con.login(password=PASSWORD, timeout=600)
            status, out = con.run("hostname; cat /etc/machine-id; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub;"
                                  " ip -4 -o addr show scope global | awk '{print $4}'", timeout=120)
            lines = out.split()
            ct.check(status == 0, f"{c['name']}: the commands ran inside")
            ct.check(lines[0] == c["hostname"].split(".")[0] or lines[0] == c["hostname"], f"{c['name']}: hostname {lines[0]}")
            ct.check(lines[1] == c["machine-id"], f"{c['name']}: machine id {lines[1]}")
            ct.check(c["ssh-host-keys"]["ed25519"] in out, f"{c['name']}: the SSH fingerprint is the reported one")
            ct.check(c["address"] in out, f"{c['name']}: address {c['address']}")
            con.run("for i in $(seq 120); do [ -s /root/firstboot-proof ] && break; sleep 1; done", timeout=180)
            status, proof = con.run("cat /root/firstboot-proof; ls /usr/local/lib/utsushi-firstboot/scripts | wc -l")
            ct.check(proof.split() == [c["machine-id"], "0"], f"{c['name']}: the first-boot script ran once")
            seen[c["name"]] = out
    ct.check(len(set(seen.values())) == BOOT, "the booted clones report distinct identities")

    rc, gone, events, err = ct.run_clone("destroy", "web-*", "--connect", lv.uri)
    ct.check(rc == 0 and len(gone["clones"]) == COUNT, f"clone destroy removes the 8{'' if rc == 0 else err[-2000:]}")
    ct.check(lv.virsh("list", "--all", "--name").split() == [], "no domain is left")
    ct.check(os.listdir(pool) == [], f"no file is left in the pool ({os.listdir(pool)})")
    ct.check([d for d in os.listdir(os.path.join(work, "w")) if d.startswith("run-")] == [],
             "no staging directory is left")


if __name__ == "__main__":
    sys.exit(main())
