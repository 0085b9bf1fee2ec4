"""A root shell on a guest's serial console: log in, run a command, get (status, output).

One implementation for every console the tests drive: harness.qemu.Machine (QEMU's serial
port through FIFOs), VirshConsole (a libvirt domain's pty console through `virsh console`)
and SocketConsole (a console QEMU serves on a UNIX socket). A class mixes in SerialShell
and provides:

    serial_text(since=0) -> str       everything the console printed after byte `since`
    serial_mark() -> int              the current length, for since=
    send_serial(text)                 type text ("\\n" ends a line)
    wait_for(pattern, timeout, since=0, regex=False) -> re.Match, TimeoutError on timeout

Contract:
  - run()'s output is exactly what the command wrote: it lies between two markers only
    the shell can print (console_command), so prompts, the echoed command line and
    messages before or after never reach the caller.
  - login() survives a username typed while the getty still sets up its terminal (no
    "Password:" follows, or "Login incorrect"): it starts over, `attempts` times.
  - A console attached after boot (attach_late = True) may have missed the getty's
    prompt: login() presses Enter until a prompt shows.
"""
import os
import pty
import re
import select
import socket
import subprocess
import threading
import time


class ConsoleError(RuntimeError):
    pass


# Markers around a command's output on a serial console. The typed line carries
# "$((N))", the shell prints the number: a marker in the output can only come from the
# shell running the command, never from echo of the typed line, a prompt, or an earlier
# command. The end marker starts on a line of its own and carries the exit status.
def console_command(command, n):
    return (f"printf '\\n@UTSUSHI-BEGIN-%d@\\n' $(({n})); {{ {command}\n}}; "
            f"printf '\\n@UTSUSHI-END-%d=%d@\\n' $(({n})) $?\n")


def console_output_regex(n):
    return re.compile(rf"@UTSUSHI-BEGIN-{n}@\r?\n(.*?)\r?\n@UTSUSHI-END-{n}=(\d+)@", re.S)


def parse_console_output(text, n):
    """(status, output) of command number n in console text, output without carriage
    returns and surrounding blank lines. ValueError when the markers are not there."""
    m = console_output_regex(n).search(text)
    if not m:
        raise ValueError(f"no complete output of console command {n}")
    return int(m.group(2)), m.group(1).replace("\r", "").strip("\n")


class SerialShell:
    attach_late = False  # True: the getty's prompt may have come before this console attached
    password_prompt_timeout = 60.0  # a getty answers a username within this, or it was lost
    _commands_run = 0

    def wait_for_login_prompt(self, timeout):
        if not self.attach_late:
            self.wait_for("login:", timeout)
            return
        deadline = time.monotonic() + timeout
        wait = 2  # a prompt already printed shows at once; otherwise press Enter soon
        while True:
            try:
                self.wait_for("login:", wait, since=max(0, self.serial_mark() - 4096))
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
                self.send_serial("\n")  # a getty prints its prompt again
                wait = 20

    def login(self, user="root", password="utsushi", timeout=240.0, attempts=3):
        """Log in on the serial getty and wait for a root shell prompt; then silence the
        kernel's and systemd's console messages, which would otherwise land between a
        command's output lines."""
        self.wait_for_login_prompt(timeout)
        for _ in range(attempts):
            mark = self.serial_mark()
            self.send_serial(user + "\n")
            try:
                self.wait_for("Password:", self.password_prompt_timeout, since=mark)
            except TimeoutError:
                continue
            self.send_serial(password + "\n")
            # The prompt need not be the console's last text: kernel messages may follow it.
            answer = self.wait_for(r"[#$] |Login incorrect", 180, since=mark, regex=True)
            if answer.group(0) != "Login incorrect":
                break
            self.wait_for(r"Login incorrect[\s\S]*login:", 180, since=mark, regex=True)
        else:
            raise ConsoleError(f"{self.name}: no shell after {attempts} login attempts\n"
                               f"--- serial tail ---\n{self.serial_text()[-2000:]}")
        self.run("stty -echo cols 200; export PS1='# ' TERM=dumb; dmesg -n 1; kill -s RTMIN+21 1")

    def run(self, command, timeout=180.0):
        """Run a shell command on the logged-in console; returns (status, output)."""
        self._commands_run += 1
        n = self._commands_run
        mark = self.serial_mark()
        self.send_serial(console_command(command, n))
        self.wait_for(console_output_regex(n), timeout, since=mark)
        return parse_console_output(self.serial_text(mark), n)


class StreamConsole(SerialShell):
    """A console read from and typed into through one file descriptor `fd`: a thread keeps
    everything it delivers from the moment of attaching. It attaches late (after boot)."""
    attach_late = True
    enter = "\n"  # what a line end is sent as

    def __init__(self, name, fd):
        self.name = name
        self._fd = fd
        self._buf = b""
        self._ended = False
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"console {name}", daemon=True)
        self._reader.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read(self):
        while True:
            try:
                ready, _, _ = select.select([self._fd], [], [], 1.0)
                data = os.read(self._fd, 65536) if ready else None
            except OSError:
                data = b""
            if data == b"":
                self._ended = True
                return
            if data:
                with self._lock:
                    self._buf += data

    def serial_text(self, since=0):
        with self._lock:
            return self._buf[since:].decode("utf-8", "replace")

    def serial_mark(self):
        with self._lock:
            return len(self._buf)

    def send_serial(self, text):
        data = text.replace("\n", self.enter).encode()
        while data:
            data = data[os.write(self._fd, data):]

    def wait_for(self, pattern, timeout, since=0, regex=False):
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern if regex else re.escape(pattern))
        deadline = time.monotonic() + timeout
        while True:
            ended = self._ended  # read before the text: output that came before the end is seen
            text = self.serial_text(since)
            m = rx.search(text)
            if m:
                return m
            if ended:
                raise ConsoleError(f"{self.name}: the console closed before {rx.pattern!r}\n"
                                   f"--- console tail ---\n{text[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {rx.pattern!r} not on the console within {timeout}s\n"
                                   f"--- console tail ---\n{text[-2000:]}")
            time.sleep(0.2)

    def close(self):
        raise NotImplementedError  # each console detaches in its own way


class VirshConsole(StreamConsole):
    """A running libvirt domain's serial console through `virsh -c URI console --force` on a
    pty. Usable on any domain with a pty console, including one a tool under test defined
    and started; it starts and stops nothing. Lines end in CR, as a terminal's Enter."""
    enter = "\r"

    def __init__(self, uri, name):
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(["virsh", "-c", uri, "console", name, "--force"], stdin=slave, stdout=slave,
                                     stderr=slave, start_new_session=True)
        os.close(slave)
        super().__init__(name, master)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        os.close(self._fd)


class SocketConsole(StreamConsole):
    """A serial console QEMU serves on a UNIX socket (a libvirt <serial type='unix'> in bind
    mode, or -chardev socket,server=on)."""

    def __init__(self, path, name=None):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path)
        super().__init__(name or os.path.basename(path), self._sock.fileno())

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(5)
        self._sock.close()
