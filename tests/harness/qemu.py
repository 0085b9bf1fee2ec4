"""Boot a disk or kernel under QEMU for a test, watch its serial console, clean up always.

    from harness.qemu import Machine
    with Machine("phys", memory_mib=1024) as m:
        m.add_disk(fixture["path"], fmt="raw", bus="ahci")   # writes go to a qcow2 overlay
        m.add_nic(model="e1000", mac=fixture["network"]["mac"], pci_slot=3)
        m.start()
        m.wait_for("login:", timeout=180)
        m.qmp.execute("query-status")

Contract:
  - Accelerator: TCG unless UTSUSHI_ACCEL=kvm|tcg says otherwise (or accel= is given);
    /dev/kvm is present on some hosts where KVM hangs guests, so it is never assumed.
  - Everything a Machine creates (QEMU process group, overlays, sockets, logs) lives in
    its own temporary directory, removed by stop() (kept when UTSUSHI_KEEP_TMP=1).
    stop() runs on leaving the `with` block, on interpreter exit and on SIGTERM/SIGINT;
    QEMU also gets SIGKILL through PR_SET_PDEATHSIG if the test process dies abruptly.
  - Fixture images are never written: disks are added through a qcow2 overlay unless
    overlay=False is passed explicitly.
  - The serial console (ttyS0) is logged to `serial_log` from the first byte, every byte
    once (SerialPipe); wait_for() scans that log; send_serial() types into the console;
    login() and run() are harness.console.SerialShell's.
  - qmp is a connected QMPClient after start(); add_qmp() before start() adds further
    monitors (e.g. for a tool under test), each on its own UNIX socket.
"""
import atexit
import ctypes
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from .console import SerialShell
from .qmp import QMPClient

QEMU = os.environ.get("UTSUSHI_QEMU", "qemu-system-x86_64")
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"

_live_machines = set()
_handlers_installed = False


def default_accel():
    """tcg, unless UTSUSHI_ACCEL names another accelerator (kvm or tcg)."""
    accel = os.environ.get("UTSUSHI_ACCEL", "tcg").strip().lower()
    if accel not in ("tcg", "kvm"):
        raise ValueError(f"UTSUSHI_ACCEL must be kvm or tcg, not {accel!r}")
    return accel


def _set_pdeathsig():
    """In the child before exec: die with SIGKILL when the parent dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _stop_all():
    for m in list(_live_machines):
        m.stop()


def _on_signal(signum, _frame):
    _stop_all()
    raise SystemExit(128 + signum)


def _install_cleanup_handlers():
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_stop_all)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
            try:
                signal.signal(sig, _on_signal)
            except ValueError:  # not the main thread
                pass


class QemuError(RuntimeError):
    pass


class SerialPipe:
    """A guest serial port through QEMU's pipe chardev (FIFOs PATH.in and PATH.out): a thread
    appends every byte QEMU writes to `log` as it comes; write() types into the guest.

    Not a socket chardev with logfile=: QEMU logs a byte when writing it to the socket
    fails with EAGAIN and again when its retry succeeds, so a client that reads late (a
    loaded host) doubles bytes in the log ("xxfs.ko" seen for "xfs.ko"). Both FIFOs are
    held open read-write here, so neither side blocks on open and the copy never sees EOF;
    close() copies what is still in the pipe, then stops."""

    def __init__(self, path, log):
        os.mkfifo(path + ".in", 0o600)
        os.mkfifo(path + ".out", 0o600)
        self._in = os.open(path + ".in", os.O_RDWR)
        self._out = os.open(path + ".out", os.O_RDWR)
        self._log = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._copy, name=f"serial {path}", daemon=True)
        self._thread.start()

    def _copy(self):
        while True:
            ready, _, _ = select.select([self._out], [], [], 0.2)
            if ready:
                os.write(self._log, os.read(self._out, 65536))
            elif self._stop.is_set():
                return

    def write(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self._in, view):]

    def close(self):
        self._stop.set()
        self._thread.join(10)
        for fd in (self._in, self._out, self._log):
            os.close(fd)


# QEMU 7.2 (Debian 12) under TCG loses guest writes while it migrates: its dirty-bitmap sync
# clears whole 64-page words of a RAM block without resetting the TCG TLB's fast-write entries,
# so stores through those entries set no dirty bit and the destination gets stale pages (kernel
# lists and slabs corrupt right after the move, more often the more dirty syncs the migration
# makes). Fixed upstream in QEMU 9.0 (03bfc2188f, "physmem: Fix migration dirty bitmap coherency
# with TCG memory access"); not in Debian 12's 7.2.22. The word-at-a-time path runs only for a
# RAM block whose size is a whole number of 64-page words; the per-page path resets the TLB. So
# a guest that migrates under TCG gets this much more RAM than asked.
TCG_MIGRATION_EXTRA_KIB = 8


class Machine(SerialShell):
    def __init__(self, name="guest", memory_mib=1024, smp=1, machine="pc", accel=None,
                 firmware="bios", extra_args=(), no_reboot=True, workdir_parent=None, migratable=False):
        """migratable: the guest will migrate (see TCG_MIGRATION_EXTRA_KIB)."""
        self.name = name
        self.memory_mib = memory_mib
        self.migratable = migratable
        self.smp = smp
        self.machine = machine
        self.accel = accel or default_accel()
        self.firmware = firmware
        self.no_reboot = no_reboot
        self.extra_args = list(extra_args)
        parent = workdir_parent or os.environ.get("UTSUSHI_TEST_TMPDIR") or "/tmp"
        self.workdir = tempfile.mkdtemp(prefix=f"utsushi-{name}-", dir=parent)
        self.serial_log = os.path.join(self.workdir, "serial.log")
        self.qemu_log = os.path.join(self.workdir, "qemu.log")
        self.qmp_path = os.path.join(self.workdir, "qmp.sock")
        self.serial_path = os.path.join(self.workdir, "serial")  # FIFOs serial.in, serial.out
        self.extra_qmp_paths = []
        self.proc = None
        self.argv = None  # QEMU's command line, once started
        self.qmp = None
        self._disks = []
        self._nics = []
        self._kernel = None
        self._serial = None
        _live_machines.add(self)
        _install_cleanup_handlers()

    # ---- configuration (before start) ----

    def add_disk(self, path, fmt="raw", bus="virtio", overlay=True, readonly=False):
        """Attach a disk on bus ahci|virtio|ide|scsi; returns the file QEMU opens."""
        if bus not in ("ahci", "virtio", "ide", "scsi"):
            raise ValueError(f"unknown disk bus {bus!r}")
        path = os.path.abspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        if overlay:
            top = os.path.join(self.workdir, f"disk{len(self._disks)}.qcow2")
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", path, top],
                           check=True)
            path, fmt = top, "qcow2"
        self._disks.append({"path": path, "fmt": fmt, "bus": bus, "readonly": readonly})
        return path

    def add_nic(self, model="virtio-net-pci", mac=None, pci_slot=None, hostfwd=()):
        """A NIC on QEMU user networking (restricted: no traffic leaves the host).
        hostfwd entries are QEMU strings like "tcp:127.0.0.1:2222-:22"."""
        self._nics.append({"model": model, "mac": mac, "slot": pci_slot, "hostfwd": list(hostfwd)})

    def set_kernel(self, kernel, initrd=None, append=""):
        self._kernel = (kernel, initrd, append)

    def add_qmp(self):
        """Another QMP monitor; returns its socket path. Call before start()."""
        path = os.path.join(self.workdir, f"qmp{len(self.extra_qmp_paths) + 1}.sock")
        self.extra_qmp_paths.append(path)
        return path

    def command_line(self):
        memory = str(self.memory_mib)
        if self.migratable and self.accel.startswith("tcg"):
            memory = "%dK" % (self.memory_mib * 1024 + TCG_MIGRATION_EXTRA_KIB)
        args = [QEMU, "-name", self.name, "-M", self.machine, "-accel", self.accel,
                "-m", memory, "-smp", str(self.smp),
                "-nodefaults", "-no-user-config", "-display", "none",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-chardev", f"pipe,id=serial0,path={self.serial_path}",
                "-serial", "chardev:serial0"]
        if self.accel == "kvm":
            args += ["-cpu", "host"]
        if self.no_reboot:
            args.append("-no-reboot")
        for path in self.extra_qmp_paths:
            args += ["-qmp", f"unix:{path},server=on,wait=off"]
        if self.firmware == "uefi":
            vars_copy = os.path.join(self.workdir, "OVMF_VARS.fd")
            shutil.copyfile(OVMF_VARS, vars_copy)
            args += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                     "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
        if self._kernel:
            kernel, initrd, append = self._kernel
            args += ["-kernel", kernel]
            if initrd:
                args += ["-initrd", initrd]
            if append:
                args += ["-append", append]
        if any(d["bus"] == "ahci" for d in self._disks):
            args += ["-device", "ahci,id=ahci0"]
        if any(d["bus"] == "scsi" for d in self._disks):
            args += ["-device", "virtio-scsi-pci,id=scsi0"]
        for i, d in enumerate(self._disks):
            drive = f"file={d['path']},format={d['fmt']},if=none,id=drive{i}"
            if d["readonly"]:
                drive += ",readonly=on"
            args += ["-drive", drive]
            boot = f",bootindex={i + 1}"
            if d["bus"] == "ahci":
                args += ["-device", f"ide-hd,drive=drive{i},bus=ahci0.{i}{boot}"]
            elif d["bus"] == "ide":
                args += ["-device", f"ide-hd,drive=drive{i},bus=ide.{i // 2},unit={i % 2}{boot}"]
            elif d["bus"] == "scsi":
                args += ["-device", f"scsi-hd,drive=drive{i},bus=scsi0.0{boot}"]
            else:
                args += ["-device", f"virtio-blk-pci,drive=drive{i}{boot}"]
        for i, n in enumerate(self._nics):
            netdev = f"user,id=net{i},restrict=on"
            for fwd in n["hostfwd"]:
                netdev += f",hostfwd={fwd}"
            dev = f"{n['model']},netdev=net{i}"
            if n["mac"]:
                dev += f",mac={n['mac']}"
            if n["slot"] is not None:
                dev += f",addr={n['slot']:#x}"
            args += ["-netdev", netdev, "-device", dev]
        return args + self.extra_args

    # ---- lifecycle ----

    def start(self, qmp_timeout=30.0):
        args = self.argv = self.command_line()
        with open(os.path.join(self.workdir, "cmdline"), "w") as f:
            f.write(" ".join(args) + "\n")
        self._serial = SerialPipe(self.serial_path, self.serial_log)
        log = open(self.qemu_log, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_set_pdeathsig)
        log.close()
        self.qmp = QMPClient(self.qmp_path)
        try:
            self.qmp.connect(timeout=qmp_timeout)
        except Exception as e:
            raise QemuError(f"QEMU {self.name} did not come up: {e}\n{self.qemu_output()}") from e
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout):
        """Wait for QEMU to exit by itself (guest power-off); returns its exit code."""
        return self.proc.wait(timeout=timeout)

    def powerdown(self, timeout=120.0):
        """ACPI power button (QMP system_powerdown), then wait for QEMU to exit by itself.
        Returns QEMU's exit code; raises TimeoutError if the guest ignores it."""
        self.qmp.execute("system_powerdown")
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name}: guest did not power off within {timeout}s") from None

    def stop(self, timeout=10.0):
        """Quit QEMU (QMP quit, then SIGTERM, then SIGKILL on its process group) and remove
        the working directory. Idempotent; safe to call from cleanup paths."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.qmp.execute("quit", timeout=3)
            except Exception:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
        for closer in (self.qmp, self._serial):
            try:
                if closer:
                    closer.close()
            except Exception:
                pass
        self.qmp = self._serial = None
        if os.environ.get("UTSUSHI_KEEP_TMP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)
        _live_machines.discard(self)

    # ---- serial console ----

    def serial_text(self, since=0):
        try:
            with open(self.serial_log, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def serial_mark(self):
        """Current length of the serial log: pass as since= to look only at what follows."""
        try:
            return os.path.getsize(self.serial_log)
        except FileNotFoundError:
            return 0

    def qemu_output(self):
        try:
            with open(self.qemu_log, errors="replace") as f:
                return f.read()[-4000:]
        except FileNotFoundError:
            return ""

    def wait_for(self, pattern, timeout, since=0, regex=False, fail_on=()):
        """Wait until `pattern` (text; a regex if regex=True; or a compiled re.Pattern, flags
        and all) appears on the serial console after byte offset `since`. Returns the match
        (re.Match). Raises TimeoutError on timeout, QemuError if QEMU exits first or a
        `fail_on` text appears first."""
        if isinstance(pattern, re.Pattern):
            rx = pattern
        else:
            rx = re.compile(pattern if regex else re.escape(pattern))
        pattern = rx.pattern
        deadline = time.monotonic() + timeout
        while True:
            text = self.serial_text(since)
            m = rx.search(text)
            if m:
                return m
            for bad in fail_on:
                if bad in text:
                    raise QemuError(f"{self.name}: saw {bad!r} while waiting for {pattern!r}\n"
                                    f"--- serial tail ---\n{text[-2000:]}")
            if not self.alive():
                raise QemuError(f"{self.name}: QEMU exited ({self.proc.returncode if self.proc else '-'}) "
                                f"before {pattern!r}\n--- serial tail ---\n{text[-2000:]}\n"
                                f"--- qemu ---\n{self.qemu_output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {pattern!r} not on the serial console within {timeout}s\n"
                                   f"--- serial tail ---\n{text[-2000:]}")
            time.sleep(0.2)

    def send_serial(self, text, char_delay=0.0):
        """Type `text` into the serial console."""
        if self._serial is None:
            raise QemuError(f"{self.name}: not started")
        data = text.encode()
        if not char_delay:
            self._serial.write(data)
            return
        for b in data:
            self._serial.write(bytes([b]))
            time.sleep(char_delay)
