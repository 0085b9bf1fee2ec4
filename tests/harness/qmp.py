"""A minimal QMP (QEMU Machine Protocol) client over a UNIX socket. Python 3 stdlib only.

Contract:
  - QMPClient(path).connect(timeout) waits for the socket to appear, reads the greeting
    and negotiates capabilities; afterwards execute() may be called.
  - execute(cmd, **args) returns the command's "return" value or raises QMPError with
    QEMU's error class and description. Events that arrive meanwhile are queued, never lost.
  - events are dicts as QEMU sends them ({"event", "data", "timestamp": {seconds,
    microseconds}}); event_time(e) gives the timestamp as float seconds (host clock).
  - wait_event(name, timeout) returns the first queued-or-arriving event of that name
    (removing it from the queue) or raises TimeoutError; event_seen(name) returns the
    first one received so far without waiting or removing it (None if none).
  - Not thread-safe: one client per thread.
"""
import json
import os
import select
import socket
import time


class QMPError(Exception):
    def __init__(self, command, error):
        self.command = command
        self.error_class = error.get("class", "")
        self.desc = error.get("desc", "")
        super().__init__(f"QMP {command}: {self.error_class}: {self.desc}")


def event_time(event):
    ts = event.get("timestamp", {})
    return ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6


class QMPClient:
    def __init__(self, path):
        self.path = path
        self.sock = None
        self.greeting = None
        self.events = []
        self._buf = b""
        self._next_id = 0

    def connect(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if os.path.exists(self.path):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.path)
                    self.sock = s
                    break
                except OSError as e:  # socket file exists but QEMU is not listening yet
                    last_error = e
                    s.close()
            time.sleep(0.05)
        if self.sock is None:
            raise TimeoutError(f"QMP socket {self.path} not ready after {timeout}s ({last_error})")
        self.greeting = self._read_message(deadline)
        if "QMP" not in self.greeting:
            raise QMPError("greeting", {"class": "Protocol", "desc": f"unexpected {self.greeting}"})
        self.execute("qmp_capabilities", timeout=max(1.0, deadline - time.monotonic()))
        return self

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read_message(self, deadline):
        """Return the next JSON message (response or event) from the socket. What has
        already arrived is read even when the deadline has passed."""
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.sock], [], [], max(0.0, left))
            if not ready:
                if left <= 0:
                    raise TimeoutError(f"no QMP message on {self.path} in time")
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"QMP connection {self.path} closed by QEMU")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line) if line.strip() else self._read_message(deadline)

    def execute(self, command, timeout=60.0, **arguments):
        """Run a QMP command; returns its "return" value; raises QMPError on "error"."""
        self._next_id += 1
        msg_id = f"utsushi-{self._next_id}"
        msg = {"execute": command, "id": msg_id}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if "event" in reply:
                self.events.append(reply)
                continue
            if reply.get("id") != msg_id:
                continue  # a reply to a command sent before a reconnect; not ours
            if "error" in reply:
                raise QMPError(command, reply["error"])
            return reply.get("return")

    def hmp(self, command_line, timeout=60.0):
        """Run a human-monitor command through QMP; returns its text output."""
        return self.execute("human-monitor-command", timeout=timeout, **{"command-line": command_line})

    def poll_events(self, timeout=0.0):
        """Read whatever events arrive within `timeout` seconds into the queue."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self._read_message(deadline)
            except TimeoutError:
                return self.events
            if "event" in msg:
                self.events.append(msg)

    def event_seen(self, name, timeout=0.0):
        """The first event `name` received so far (left in the queue), after reading
        whatever arrives within `timeout` seconds; None when there is none."""
        self.poll_events(timeout)
        return next((e for e in self.events if e.get("event") == name), None)

    def wait_event(self, name, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("event") == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"QMP event {name} not seen within {timeout}s")
            try:
                msg = self._read_message(deadline)
            except TimeoutError:
                continue
            if "event" in msg:
                self.events.append(msg)
