"""Shared steps of the p2v convert end-to-end tests: capture a fixture, write the hardware
profile a capture of the running server would have written (its NIC's name and MAC), run
`p2v convert`, boot the result under QEMU (TCG) with only virtio devices and check it
from inside, and boot it again on the server's own AHCI controller."""
import hashlib
import json
import os
import re
import sys
import time

from p2v_common import P2V, fixture, p2v, workdir  # noqa: F401
from harness.qemu import Machine  # noqa: E402

BOOT_TIMEOUT = 900       # TCG on a loaded 2-core machine
CONVERT_TIMEOUT = 2400   # one appliance launch + the guest's update-initramfs under TCG


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def capture(fx, d):
    image = os.path.join(d, "captured.qcow2")
    p2v("capture", fx["path"], "-o", image, "--no-profile")
    return image


def write_profile(fx, path, cpus=2, memory_mib=1024):
    """The profile `p2v capture` writes when it runs on the server itself (source
    running-machine): its NIC by name and MAC, CPUs, memory."""
    net = fx["network"]
    profile = {"type": "utsushi-hardware-profile", "version": 1, "source": "running-machine",
               "hostname": fx["hostname"], "cpus": {"count": cpus, "cores": cpus},
               "memory": {"bytes": memory_mib << 20},
               "nics": [{"name": net["interface"], "mac": net["mac"], "driver": "e1000",
                         "bus-path": "0000:00:03.0"}],
               "firmware": fx["firmware"], "disks": []}
    with open(path, "w") as f:
        json.dump(profile, f)
    return path


def convert(*args, check=True):
    """Runs `p2v --json convert ...`; returns (process, final JSON result or None)."""
    t0 = time.monotonic()
    proc = p2v("--json", "convert", *args, check=False, timeout=CONVERT_TIMEOUT)
    log(f"p2v convert exited {proc.returncode} after {time.monotonic() - t0:.0f} s")
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            j = json.loads(line)
            if j.get("type") == "result":
                result = j
    if check and proc.returncode != 0:
        raise AssertionError(f"p2v convert failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    return proc, result


def manifest_digest(manifest_path):
    """SHA-256 over the manifest's lines sorted by path, as the guest computes it."""
    entries = []
    with open(manifest_path) as f:
        for line in f:
            if line.strip():
                digest, _, path = line.rstrip("\n").partition("  ")
                entries.append((path, digest))
    entries.sort(key=lambda e: e[0].encode())
    text = "".join(f"{digest}  {path}\n" for path, digest in entries)
    return hashlib.sha256(text.encode()).hexdigest()


GUEST_MANIFEST = ("cd {dir} && LC_ALL=C find . -type f | LC_ALL=C sort | "
                  "xargs -d '\\n' sha256sum | sha256sum | cut -d' ' -f1")


def changes(result, op_name):
    for op in result["report"]["operations"]:
        if op["name"] == op_name:
            return op
    raise AssertionError(f"no operation {op_name} in the report")


def boot_virtio_and_check(tc, fx, disk, mac, root_dev, firmware="bios"):
    """Boots the converted disk on q35 with ONLY a virtio-blk disk and a virtio-net NIC
    carrying `mac`; logs in on the serial console and checks from inside."""
    net = fx["network"]
    t0 = time.monotonic()
    m = Machine(f"conv-{fx['name']}", memory_mib=1024, smp=2, machine="q35", firmware=firmware)
    m.add_disk(disk, fmt="qcow2", bus="virtio")
    m.add_nic(model="virtio-net-pci", mac=mac)
    with m:
        m.start()
        m.wait_for(fx["markers"]["login"], BOOT_TIMEOUT, fail_on=(fx["markers"]["no_root_device"],))
        log(f"virtio boot: login prompt after {time.monotonic() - t0:.0f} s")
        m.login()
        nic = net["interface"]
        status, out = m.run(f"cat /sys/class/net/{nic}/address; basename $(readlink /sys/class/net/{nic}/device/driver)")
        tc.assertEqual(status, 0, out)
        tc.assertEqual(out.split(), [mac, "virtio_net"])
        address = net["address"]
        deadline = time.monotonic() + 120
        while True:  # ifupdown/networkd may still be bringing the address up
            status, out = m.run(f"ip -4 -o addr show dev {nic}")
            if address in out or time.monotonic() > deadline:
                break
            time.sleep(2)
        tc.assertIn(address, out, f"static address not up on {nic}")
        status, out = m.run("findmnt -n -o SOURCE /")
        tc.assertEqual(out.strip(), root_dev)
        status, out = m.run("ls /sys/block | grep -c '^sd' ; ls /sys/block | grep -c '^vd'")
        tc.assertEqual(out.split(), ["0", "1"], "only a virtio disk is attached")
        manifest = fx["manifests"][0]
        status, out = m.run(GUEST_MANIFEST.format(dir=manifest["directory"]), timeout=300)
        tc.assertEqual(status, 0, out)
        tc.assertEqual(out.strip(), manifest_digest(manifest["path"]))
        m.powerdown(timeout=300)


def boot_ahci(tc, fx, disk, firmware="bios"):
    """The converted disk still boots on the server's own hardware: AHCI and its e1000 NIC."""
    t0 = time.monotonic()
    nic = fx["qemu"]["nic"]
    m = Machine(f"ahci-{fx['name']}", memory_mib=1024, smp=2, machine=fx["qemu"]["machine"], firmware=firmware)
    m.add_disk(disk, fmt="qcow2", bus="ahci")
    m.add_nic(model=nic["model"], mac=nic["mac"], pci_slot=nic["pci_slot"])
    with m:
        m.start()
        m.wait_for(fx["markers"]["login"], BOOT_TIMEOUT, fail_on=(fx["markers"]["no_root_device"],))
        log(f"AHCI boot: login prompt after {time.monotonic() - t0:.0f} s")
