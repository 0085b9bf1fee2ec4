"""Helpers of the clone end-to-end tests (stdlib only, on tests/harness).

- run_clone(*args): runs the built `clone` with --json; returns (exit code, result object
  or None, progress events, stderr). Raises when it exits 0 without a result.
- golden_fixture(): golden-traps (every identity trap) when it is built, else golden-guest.
- inspect_clones(volumes, facts): ONE guestfish launch reading, from each clone's disk,
  what identity it carries (machine ids, host name, hosts, network config, host key,
  random seed, leftovers of the golden's secrets, journal, leases).
- ssh_fingerprint(pub_line): SHA256 fingerprint as ssh-keygen -l prints it.
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from harness.fixtures import fixture, load_all  # noqa: E402
from harness.guestfs import Script, guestfs_env  # noqa: E402

BIN = os.path.join(os.environ.get("UTSUSHI_BIN", "build/bin"), "clone")


class Failed(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)
    print(f"ok: {what}", flush=True)


def golden_fixture():
    return fixture("golden-traps" if "golden-traps" in load_all() else "golden-guest")


def run_clone(*args, timeout=1800, env=None):
    """`clone --json ARGS`: (exit code, result object or None, progress events, stderr)."""
    proc = subprocess.run([BIN, "--json", *args], capture_output=True, text=True, timeout=timeout,
                          env=env or guestfs_env())
    events, result = [], None
    for line in proc.stdout.splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("type") == "result":
            result = j
        else:
            events.append(j)
    if proc.returncode == 0 and (result is None or result.get("status") != "ok"):
        raise Failed(f"clone {' '.join(args)} exited 0 without an ok result:\n{proc.stdout[-3000:]}")
    return proc.returncode, result, events, proc.stderr


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ssh_fingerprint(pub_line):
    blob = base64.b64decode(pub_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def network_file(facts):
    return facts["network"]["config"].split()[0]


def inspect_clones(volumes, facts):
    """What each clone disk carries, read in one appliance launch (read-only)."""
    s = Script()
    for v in volumes:
        s.add_disk(v, fmt="qcow2", readonly=True)
    s.launch()
    secret_files = facts.get("secret", {}).get("files", [])
    lease = facts["network"].get("dhcp_lease_file")
    for i, _ in enumerate(volumes):
        dev = f"/dev/sd{chr(ord('a') + i)}1" if i < 26 else f"/dev/sda{chr(ord('a') + i - 26)}1"
        s.cmd(f"mount-ro {dev} /")
        for name, cmd in [("machine-id", "cat /etc/machine-id"),
                          ("dbus-link", "is-symlink /var/lib/dbus/machine-id"),
                          ("hostname", "cat /etc/hostname"),
                          ("hosts", "cat /etc/hosts"),
                          ("network", f"cat {network_file(facts)}"),
                          ("udev", "glob cat /etc/udev/rules.d/70-persistent-net.rules"),
                          ("ed25519", "cat /etc/ssh/ssh_host_ed25519_key.pub"),
                          ("key-mode", "stat /etc/ssh/ssh_host_ed25519_key"),
                          ("seed", "checksum sha256 /var/lib/systemd/random-seed"),
                          ("journal", "ls /var/log/journal"),
                          ("run-proof", "cat /root/run-proof"),
                          ("firstboot", "ls /usr/local/lib/utsushi-firstboot/scripts"),
                          ("authorized", "cat /root/.ssh/authorized_keys"),
                          ("shadow-root", "grep ^root: /etc/shadow")]:
            s.section(f"{i}:{name}")
            s.cmd(f"-{cmd}")  # '-': a failing command (file absent) does not end the script
        for path in secret_files + ([lease] if lease else []):
            s.section(f"{i}:exists:{path}")
            s.cmd(f"exists {path}")
        s.cmd("umount-all")
    out = s.run(timeout=1500)
    clones = []
    for i, _ in enumerate(volumes):
        c = {k.split(":", 1)[1]: v for k, v in out.items() if k.startswith(f"{i}:")}
        c["leftovers"] = [p for p in secret_files + ([lease] if lease else [])
                          if c.get(f"exists:{p}", "").strip() == "true"]
        clones.append(c)
    return clones


def new_ssh_key(directory):
    """A fresh ed25519 key pair for root's authorized_keys; returns the public key file."""
    path = os.path.join(directory, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "clone-e2e", "-f", path], check=True)
    return path + ".pub"


def write_file(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def tmpdir(prefix):
    return tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("UTSUSHI_TEST_TMPDIR") or "/var/tmp")
