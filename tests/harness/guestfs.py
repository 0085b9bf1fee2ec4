"""libguestfs for tests, through guestfish. Python 3 stdlib only.

Contract:
  - guestfs_env() is the environment every launch uses: the direct backend, and TCG forced
    unless UTSUSHI_ACCEL=kvm (on these machines KVM exists but hangs guests).
  - A launch costs ~16 s under TCG, so batch: Script collects commands for several
    disks and filesystems and runs them in ONE appliance launch; run() returns the output
    split into the sections opened with section(name).
  - ensure_appliance() builds (or checks) supermin's cached appliance once per machine
    (cached under /var/tmp/.guestfs-$UID); tests may call it up front so that their own
    timeouts do not include that first build.
  - Failures raise GuestfishError with guestfish's stderr; nothing is left running.
"""
import os
import subprocess

from .qemu import default_accel

SECTION = "@@utsushi-section "


class GuestfishError(RuntimeError):
    pass


def guestfs_env(base=None):
    env = dict(os.environ if base is None else base)
    env["LIBGUESTFS_BACKEND"] = "direct"
    if default_accel() == "tcg":
        env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
    else:
        env.pop("LIBGUESTFS_BACKEND_SETTINGS", None)
    return env


def guestfish(script, timeout=900):
    """Run a guestfish script (text, one command per line) and return its stdout."""
    proc = subprocess.run(["guestfish"], input=script, capture_output=True, text=True,
                          env=guestfs_env(), timeout=timeout, start_new_session=True)
    if proc.returncode != 0:
        raise GuestfishError(f"guestfish failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}\n"
                             f"--- script ---\n{script}")
    return proc.stdout


def ensure_appliance(timeout=600):
    """Launch an empty appliance once, so the supermin appliance is built and cached."""
    guestfish("add-drive /dev/null\nrun\n", timeout=timeout)


class Script:
    """A batch of guestfish commands run in one appliance launch.

        s = Script()
        s.add_disk(path, fmt="raw", readonly=True)
        s.launch()
        s.section("ext4"); s.cmd("mount-ro /dev/sda1 /"); s.cmd("checksums-out sha256 / -")
        s.cmd("umount-all")
        out = s.run()          # {"ext4": "....", ...}
    """

    def __init__(self):
        self.lines = []
        self.launched = False

    def add_disk(self, path, fmt="raw", readonly=True):
        if self.launched:
            raise RuntimeError("add disks before launch()")
        self.lines.append(f'add-drive "{path}" format:{fmt} readonly:{"true" if readonly else "false"}')

    def launch(self):
        self.lines.append("run")
        self.launched = True

    def cmd(self, line):
        if not self.launched:
            raise RuntimeError("launch() before commands that need the appliance")
        self.lines.append(line)

    def section(self, name):
        self.cmd(f"echo {SECTION}{name}")

    def run(self, timeout=900):
        out = guestfish("\n".join(self.lines) + "\n", timeout=timeout)
        sections, current = {}, None
        for line in out.splitlines():
            if line.startswith(SECTION):
                current = line[len(SECTION):].strip()
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
        return {name: "\n".join(lines) for name, lines in sections.items()}


def parse_sha256_lines(text):
    """{"./path": sha256} from sha256sum-style lines ("HASH  ./path")."""
    result = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, _, path = line.partition("  ")
        path = path.strip()
        if not path.startswith("./"):
            path = "./" + path.lstrip("/")
        result[path] = digest.strip()
    return result


def read_manifest(path):
    with open(path) as f:
        return parse_sha256_lines(f.read())
