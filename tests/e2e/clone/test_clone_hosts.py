#!/usr/bin/env python3
"""clone create domain:NAME over two --connect URIs (issue 13's proof: a domain golden, and
libvirt as the multi-host engine).

- the golden is a stopped domain on the first private libvirtd: its disk (the golden
  fixture) and its definition (user-mode NIC with the golden's MAC, a serial console on a
  UNIX socket, a memory size of its own) are the template;
- 4 clones over two private libvirtds into each host's pool "default" (a directory of its
  own per host): 2 on each, each pool holding the golden's volume (uploaded once per host)
  and its clones' overlays; each clone keeps the template's devices with its own name,
  UUID and MAC, and the template's memory;
- one appliance launch reads all 4: each its own identity, the udev rule following its
  MAC (the template's MAC was the golden's);
- a clone on the second host boots and reports its identity from inside;
- clone destroy with both URIs leaves no clone domain and no file on either host; the
  golden domain stays.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clonetest as ct  # noqa: E402
from harness.console import SocketConsole  # noqa: E402
from harness.libvirtd import PrivateLibvirtd  # noqa: E402

TEMPLATE = """<domain type='qemu'>
  <name>golden-dom</name>
  <memory unit='MiB'>768</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'><mac address='{mac}'/><model type='virtio'/></interface>
    <serial type='unix'><source mode='bind' path='{dir}/golden-dom.sock'/><log file='{dir}/golden-dom.log'/>
      <target port='0'/></serial>
    <console type='unix'><source mode='bind' path='{dir}/golden-dom.sock'/><log file='{dir}/golden-dom.log'/>
      <target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def main():
    if os.geteuid() != 0:
        print("SKIP: a private libvirtd needs root")
        return 0
    facts = ct.golden_fixture()
    work = ct.tmpdir("clone-hosts-")
    try:
        with PrivateLibvirtd() as a, PrivateLibvirtd() as b:
            run(a, b, facts, work)
    finally:
        if os.environ.get("UTSUSHI_KEEP_TMP") != "1":
            shutil.rmtree(work, ignore_errors=True)
    return 0


def run(a, b, facts, work):
    mac = facts["network"].get("mac", "52:54:00:75:74:06")
    template = ct.write_file(work, "golden-dom.xml", TEMPLATE.format(disk=facts["path"], mac=mac, dir=work))
    a.virsh("define", template)
    pools = {}
    for lv, name in ((a, "pool-a"), (b, "pool-b")):
        pools[lv.uri] = os.path.join(work, name)
        lv.virsh("pool-define-as", "default", "dir", "--target", pools[lv.uri])
        lv.virsh("pool-build", "default")
        lv.virsh("pool-start", "default")
    rc, result, _, err = ct.run_clone("create", "domain:golden-dom", "--count", "4", "--name-pattern", "app-{n}",
                                      "--ip", "10.0.2.41/24", "--gateway", "10.0.2.2", "--connect", a.uri,
                                      "--connect", b.uri, "--work-dir", os.path.join(work, "w"))
    ct.check(rc == 0, f"clone create domain:golden-dom over two hosts succeeds{'' if rc == 0 else err[-3000:]}")
    clones = result["clones"]
    ct.check([c["uri"] for c in clones] == [a.uri, b.uri, a.uri, b.uri], "the clones are spread over both hosts")
    ct.check(sorted(a.virsh("list", "--all", "--name").split()) == ["app-1", "app-3", "golden-dom"],
             "the first host has its 2 clones and the golden domain")
    ct.check(sorted(b.virsh("list", "--all", "--name").split()) == ["app-2", "app-4"], "the second host has its 2")
    for lv, mine in ((a, ["app-1", "app-3"]), (b, ["app-2", "app-4"])):
        volumes = sorted(os.listdir(pools[lv.uri]))
        golden = [v for v in volumes if v.endswith(".qcow2") and not v.startswith("app-")]
        ct.check(len(golden) == 1 and [v for v in volumes if v.startswith("app-")] == [m + ".qcow2" for m in mine],
                 f"{lv.uri}: the golden's volume, uploaded to this host, and its clones' overlays ({volumes})")
        ct.check(all(c["disks"][0].startswith(pools[lv.uri]) for c in clones if c["uri"] == lv.uri),
                 f"{lv.uri}: its clones' disks are in its own pool")
    for c in clones:
        lv = a if c["uri"] == a.uri else b
        xml = lv.virsh("dumpxml", "--inactive", c["name"])
        ct.check(c["mac"] in xml and mac not in xml and "type='user'" in xml and "<memory unit='KiB'>786432" in xml,
                 f"{c['name']}: the template's devices and memory with its own MAC")
        ct.check(f"{work}/{c['name']}.sock" in xml, f"{c['name']}: the serial socket renamed after the clone")

    inside = ct.inspect_clones([c["disks"][0] for c in clones], facts)
    for c, g in zip(clones, inside):
        ct.check(g["machine-id"].strip() == c["machine-id"] and g["hostname"].strip() == c["name"],
                 f"{c['name']}: its machine id and host name")
        ct.check(ct.ssh_fingerprint(g["ed25519"]) == c["ssh-host-keys"]["ed25519"], f"{c['name']}: its host key")
        ct.check(f"Address={c['address']}" in g["network"], f"{c['name']}: its address")
        if facts["network"].get("mac"):
            ct.check(c["mac"] in g["udev"] and mac not in g["udev"], f"{c['name']}: the udev rule follows its MAC")

    c = clones[1]
    b.virsh("start", c["name"])
    with SocketConsole(f"{work}/{c['name']}.sock", c["name"]) as con:  # the clone's own console socket
        con.login(password=facts["root_password"], timeout=600)
        con.run(f"for i in $(seq 90); do ip -4 -o addr | grep -q '{c['address']}' && break; sleep 1; done", timeout=150)
        status, out = con.run("hostname; cat /etc/machine-id; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub;"
                              " ip -4 -o addr show scope global")
        ct.check(status == 0 and out.split()[:2] == [c["hostname"], c["machine-id"]],
                 f"{c['name']}: host name and machine id from inside, on the second host")
        ct.check(c["ssh-host-keys"]["ed25519"] in out and c["address"] in out,
                 f"{c['name']}: its SSH fingerprint and address from inside")

    rc, gone, _, err = ct.run_clone("destroy", "app-*", "--connect", a.uri, "--connect", b.uri)
    ct.check(rc == 0 and len(gone["clones"]) == 4, f"clone destroy removes the 4 on both hosts{'' if rc == 0 else err}")
    ct.check(a.virsh("list", "--all", "--name").split() == ["golden-dom"] and b.virsh("list", "--all", "--name").split() == [],
             "only the golden domain is left")
    for lv in (a, b):
        ct.check(os.listdir(pools[lv.uri]) == [], f"{lv.uri}: no file is left in its pool ({os.listdir(pools[lv.uri])})")


if __name__ == "__main__":
    sys.exit(main())
