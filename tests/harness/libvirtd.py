"""A private libvirtd for tests, and helpers for the test:///default driver. Stdlib only.

    with PrivateLibvirtd() as lv:
        lv.virsh("define", xml_path)
        lv.virsh("start", "guest")
        ... connect tools to lv.uri ...

Contract:
  - start() runs libvirtd as root in its own mount namespace: tmpfs over /run/libvirt,
    /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt, and its own configuration
    bind-mounted over /etc/libvirt, so it shares no state with any other libvirtd and
    leaves nothing behind. (Those four directories are created empty on the host if
    missing, as mount points; nothing is written into them outside the namespace.)
  - The qemu driver runs QEMU as root, with no security driver, no per-domain mount
    namespace, no cgroups and no virtlogd; domains must be <domain type='qemu'> (TCG)
    unless the caller knows KVM works.
  - If the host has no libvirt-qemu account (libvirtd needs it even when qemu.conf says
    root), the namespace sees /etc/passwd and /etc/group copies that add it.
  - The socket is in the instance's temporary directory; `uri` reaches it,
    e.g. qemu:///system?socket=/tmp/utsushi-libvirtd-XXXX/sock/libvirt-sock.
  - stop() destroys every QEMU the daemon started (every process in its mount
    namespace), stops the daemon and removes the temporary directory. It runs on leaving
    the `with` block and at interpreter exit.
"""
import atexit
import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

MOUNT_POINTS = ("/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt")

QEMU_CONF = """# utsushi test libvirtd: QEMU as root, nothing host-specific
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
"""

TEST_URI = "test:///default"


class LibvirtdError(RuntimeError):
    pass


def virsh_test(*args, timeout=60):
    """Run virsh against the in-process test driver (state lasts for this one virsh run)."""
    return _virsh(TEST_URI, args, timeout)


def _virsh(uri, args, timeout):
    proc = subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise LibvirtdError(f"virsh {' '.join(args)} on {uri} failed: {proc.stderr.strip()}")
    return proc.stdout


# The <emulator> of a TCG domain that will migrate: QEMU with the guest's RAM off QEMU 7.2's
# TCG dirty-bitmap bug (harness/qemu_tcg_migratable.py says how and why).
TCG_MIGRATABLE_EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "qemu_tcg_migratable.py")


def emulator_xml(migratable):
    """The <emulator> element for a TCG domain (empty: libvirt's default QEMU)."""
    return f"<emulator>{TCG_MIGRATABLE_EMULATOR}</emulator>" if migratable else ""


def kernel_domain_xml(name, kernel, initrd, cmdline, memory_mib, serial_log, machine="pc", migratable=False):
    """A minimal TCG domain booting a kernel directly, serial console to a file.
    migratable: it will migrate (TCG_MIGRATABLE_EMULATOR)."""
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='{machine}'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <devices>{emulator_xml(migratable)}
    <serial type='file'><source path='{serial_log}'/><target port='0'/></serial>
    <console type='file'><source path='{serial_log}'/><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
"""


class PrivateLibvirtd:
    def __init__(self, workdir_parent=None):
        parent = workdir_parent or os.environ.get("UTSUSHI_TEST_TMPDIR") or "/tmp"
        self.workdir = tempfile.mkdtemp(prefix="utsushi-libvirtd-", dir=parent)
        self.sock_dir = os.path.join(self.workdir, "sock")
        self.conf_dir = os.path.join(self.workdir, "etc")
        self.log = os.path.join(self.workdir, "libvirtd.log")
        self.socket = os.path.join(self.sock_dir, "libvirt-sock")
        self.uri = f"qemu:///system?socket={self.socket}"
        self.proc = None
        self._mnt_ns = None
        atexit.register(self.stop)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=60):
        if os.geteuid() != 0:
            raise LibvirtdError("a private system libvirtd needs root")
        os.makedirs(self.sock_dir)
        os.makedirs(self.conf_dir)
        for d in MOUNT_POINTS:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(self.conf_dir, "libvirtd.conf"), "w") as f:
            f.write(f'unix_sock_dir = "{self.sock_dir}"\nunix_sock_rw_perms = "0700"\n'
                    f'auth_unix_ro = "none"\nauth_unix_rw = "none"\n'
                    f'log_outputs = "3:file:{self.log}"\n')
        with open(os.path.join(self.conf_dir, "qemu.conf"), "w") as f:
            f.write(QEMU_CONF)
        mounts = "; ".join(f"mount -t tmpfs -o mode=0755 utsushi-libvirt {d}" for d in MOUNT_POINTS)
        mounts += "".join(f"; mount --bind {src} {dst}" for src, dst in self._account_files())
        script = (f"set -e; {mounts}; mount --bind {self.conf_dir} /etc/libvirt; "
                  f"exec libvirtd -f {self.conf_dir}/libvirtd.conf -p /run/libvirt/libvirtd.pid")
        out = open(os.path.join(self.workdir, "libvirtd.out"), "wb")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LibvirtdError(f"libvirtd exited ({self.proc.returncode}): {self._output()}")
            if os.path.exists(self.socket):
                try:
                    self.virsh("version", timeout=10)
                    self._mnt_ns = os.readlink(f"/proc/{self.proc.pid}/ns/mnt")
                    return self
                except (LibvirtdError, subprocess.TimeoutExpired):
                    pass
            time.sleep(0.2)
        self.stop()
        raise LibvirtdError(f"libvirtd did not answer on {self.socket} within {timeout}s")

    def _account_files(self):
        """libvirtd resolves its compiled-in QEMU user (libvirt-qemu) before it reads
        qemu.conf, so that account must exist. When the host lacks it, the namespace gets
        copies of /etc/passwd and /etc/group that add it; the host's files are untouched."""
        try:
            pwd.getpwnam("libvirt-qemu")
            grp.getgrnam("libvirt-qemu")
            return []
        except KeyError:
            pass
        passwd, group = os.path.join(self.workdir, "passwd"), os.path.join(self.workdir, "group")
        with open("/etc/passwd") as src, open(passwd, "w") as dst:
            text = src.read()
            dst.write(text if text.endswith("\n") else text + "\n")
            if not any(line.startswith("libvirt-qemu:") for line in text.splitlines()):
                dst.write("libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin\n")
        with open("/etc/group") as src, open(group, "w") as dst:
            text = src.read()
            dst.write(text if text.endswith("\n") else text + "\n")
            names = {line.split(":", 1)[0] for line in text.splitlines()}
            for name, gid in (("libvirt-qemu", 64055), ("kvm", 64056), ("libvirt", 64057)):
                if name not in names:
                    dst.write(f"{name}:x:{gid}:\n")
        return [(passwd, "/etc/passwd"), (group, "/etc/group")]

    def _output(self):
        text = ""
        for name in ("libvirtd.out", "libvirtd.log"):
            try:
                with open(os.path.join(self.workdir, name), errors="replace") as f:
                    text += f.read()[-2000:]
            except FileNotFoundError:
                pass
        return text

    def virsh(self, *args, timeout=120):
        return _virsh(self.uri, args, timeout)

    def _namespace_pids(self):
        """PIDs in libvirtd's private mount namespace: the daemon and the QEMUs it started."""
        pids = []
        if not self._mnt_ns:
            return pids
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/mnt") == self._mnt_ns:
                        pids.append(int(entry))
                except OSError:
                    pass
        return pids

    def qemu_pid(self, name):
        """PID of the QEMU running domain `name` (libvirt names it with -name guest=NAME,...)."""
        for pid in self._namespace_pids():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"qemu-system" in argv[0] and any(a.startswith(b"guest=" + name.encode() + b",") for a in argv):
                return pid
        raise LookupError(f"no QEMU process for domain {name}")

    def stop(self):
        if self.proc is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            return
        if self.proc.poll() is None:
            try:
                for name in self.virsh("list", "--name", timeout=15).split():
                    try:
                        self.virsh("destroy", name, timeout=30)
                    except (LibvirtdError, subprocess.TimeoutExpired):
                        pass
            except (LibvirtdError, subprocess.TimeoutExpired):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self._namespace_pids()
            if self.proc.poll() is None:
                pids.append(self.proc.pid)
            for pid in set(pids):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (self.proc.poll() is None or self._namespace_pids()):
                time.sleep(0.1)
            if self.proc.poll() is not None and not self._namespace_pids():
                break
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        if os.environ.get("UTSUSHI_KEEP_TMP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)
