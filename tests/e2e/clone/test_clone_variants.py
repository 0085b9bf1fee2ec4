#!/usr/bin/env python3
"""clone create --full, and linked clones of an OVA golden (issue 13's proof, variants).

- 3 full clones of the golden with --dhcp: their disks stand alone (no backing file,
  qemu-img check clean) and hold the golden's used data only; the golden's static address
  became DHCP in its own networkd file;
- an OVA made from the golden (utsushi-img convert -O ova): 3 linked clones of it, static
  addresses; the OVA is converted once, into the work directory's cache;
- one appliance launch reads all 6 clones: each its own machine id, host name, host key
  (the reported one), address setting; none of the golden's secrets;
- one clone of each kind boots (TCG) to login: and reports its identity from inside, the
  DHCP one the address QEMU's DHCP server gives;
- clone destroy leaves no domain and no file; the OVA and the golden are unchanged.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clonetest as ct  # noqa: E402
from harness.console import VirshConsole  # noqa: E402
from harness.libvirtd import PrivateLibvirtd  # noqa: E402

IMG = os.path.join(os.environ.get("UTSUSHI_BIN", "build/bin"), "utsushi-img")


def main():
    if os.geteuid() != 0:
        print("SKIP: a private libvirtd needs root")
        return 0
    facts = ct.golden_fixture()
    golden_sum = ct.sha256_file(facts["path"])
    work = ct.tmpdir("clone-variants-")
    try:
        ova = os.path.join(work, "golden.ova")
        subprocess.run([IMG, "convert", "-O", "ova", facts["path"], ova], check=True, timeout=900)
        ova_sum = ct.sha256_file(ova)
        with PrivateLibvirtd() as lv:
            run(lv, facts, ova, work)
        ct.check(ct.sha256_file(ova) == ova_sum, "the OVA is unchanged")
        ct.check(ct.sha256_file(facts["path"]) == golden_sum, "the golden's checksum is unchanged")
    finally:
        if os.environ.get("UTSUSHI_KEEP_TMP") != "1":
            shutil.rmtree(work, ignore_errors=True)
    return 0


def qemu_img_info(path):
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run(lv, facts, ova, work):
    pool = os.path.join(work, "pool")
    cache = os.path.join(work, "w", "cache")
    common = ["--connect", lv.uri, "--pool", pool, "--network", "user", "--work-dir", os.path.join(work, "w")]
    rc, full, _, err = ct.run_clone("create", facts["path"], "--full", "--count", "3", "--name-pattern", "full-{n}",
                                    "--dhcp", *common)
    ct.check(rc == 0, f"clone create --full --dhcp succeeds{'' if rc == 0 else err[-3000:]}")
    rc, linked, _, err = ct.run_clone("create", ova, "--count", "3", "--name-pattern", "ova-{n}", "--ip", "10.0.2.31/24",
                                      "--gateway", "10.0.2.2", *common)
    ct.check(rc == 0, f"clone create from the OVA succeeds{'' if rc == 0 else err[-3000:]}")
    ct.check(len(os.listdir(cache)) == 1, f"the OVA was converted once, into the cache ({os.listdir(cache)})")
    clones = full["clones"] + linked["clones"]
    for field in ("uuid", "mac", "machine-id"):
        ct.check(len({c[field] for c in clones}) == 6, f"the 6 clones have distinct {field}s")

    for c in full["clones"]:
        info = qemu_img_info(c["disks"][0])
        ct.check("backing-filename" not in info, f"{c['name']}: a full clone has no backing file")
        check = subprocess.run(["qemu-img", "check", "-U", c["disks"][0]], capture_output=True, text=True)
        ct.check(check.returncode == 0, f"{c['name']}: qemu-img check finds it clean")
        ct.check(info["actual-size"] < facts["virtual_size"] // 2,
                 f"{c['name']}: only the used data was copied ({info['actual-size']} bytes)")
    for c in linked["clones"]:
        info = qemu_img_info(c["disks"][0])
        ct.check(info.get("backing-filename", "").endswith(".qcow2") and os.path.dirname(c["disks"][0]) == pool,
                 f"{c['name']}: an overlay over the converted golden in the pool ({info.get('backing-filename')})")

    inside = ct.inspect_clones([c["disks"][0] for c in clones], facts)
    for c, g in zip(clones, inside):
        n = c["name"]
        ct.check(g["machine-id"].strip() == c["machine-id"], f"{n}: its machine id")
        ct.check(g["hostname"].strip() == n, f"{n}: its host name")
        ct.check(ct.ssh_fingerprint(g["ed25519"]) == c["ssh-host-keys"]["ed25519"], f"{n}: the reported host key")
        ct.check(g["leftovers"] == [] and g["journal"].strip() == "", f"{n}: none of the golden's secrets")
        if c["address"] == "dhcp":
            ct.check("DHCP=ipv4" in g["network"] and "Address=" not in g["network"],
                     f"{n}: DHCP replaced the golden's static address")
        else:
            ct.check(f"Address={c['address']}" in g["network"], f"{n}: its static address {c['address']}")

    for c in (full["clones"][0], linked["clones"][0]):
        lv.virsh("start", c["name"])
        with VirshConsole(lv.uri, c["name"]) as con:
            con.login(password=facts["root_password"], timeout=600)
            want = "10.0.2.15/24" if c["address"] == "dhcp" else c["address"]
            con.run(f"for i in $(seq 90); do ip -4 -o addr | grep -q '{want}' && break; sleep 1; done", timeout=150)
            status, out = con.run("hostname; cat /etc/machine-id; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub;"
                                  " ip -4 -o addr show scope global")
            ct.check(status == 0 and out.split()[:2] == [c["hostname"], c["machine-id"]],
                     f"{c['name']}: host name and machine id from inside")
            ct.check(c["ssh-host-keys"]["ed25519"] in out, f"{c['name']}: the reported SSH fingerprint")
            ct.check(want in out, f"{c['name']}: address {want} from inside")

    rc, gone, _, err = ct.run_clone("destroy", "full-*", "ova-*", "--connect", lv.uri)
    ct.check(rc == 0 and len(gone["clones"]) == 6, f"clone destroy removes the 6{'' if rc == 0 else err[-2000:]}")
    ct.check(lv.virsh("list", "--all", "--name").split() == [] and os.listdir(pool) == [],
             f"no domain and no file are left ({os.listdir(pool)})")


if __name__ == "__main__":
    sys.exit(main())
