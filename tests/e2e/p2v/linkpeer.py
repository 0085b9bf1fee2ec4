"""A hostile or scripted peer of utsushi's link layer (common/link: frame.h, handshake.h), for
the servers' e2e tests: frames with sequence numbers and XXH3 checksums (libxxhash through
ctypes), the token handshake for a named protocol, raw garbage. Local to the p2v tests until the
shared harness (tests/harness) has one."""
import ctypes
import hashlib
import hmac
import os
import socket
import struct

_xx = ctypes.CDLL("libxxhash.so.0")
_xx.XXH3_64bits.restype = ctypes.c_uint64
_xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

MAGIC, VERSION, HEADER = 0x55544C4B, 1, 40
HELLO, AUTH, AUTH_OK, REFUSE, ABORT = 0xF0, 0xF1, 0xF2, 0xF3, 0xFF


def xxh3(b):
    return _xx.XXH3_64bits(bytes(b), len(b))


def frame(ftype, payload, seq, flags=0):
    head = struct.pack(">IBBHQIIQ", MAGIC, VERSION, ftype, flags, seq, len(payload), len(payload), xxh3(payload))
    return head + struct.pack(">Q", xxh3(head)) + payload


class Peer:
    """One connection: send(type, payload), recv() -> (type, payload), handshake(...)."""

    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.tx = 0
        self.rx = 0

    def send(self, ftype, payload=b""):
        self.sock.sendall(frame(ftype, payload, self.tx))
        self.tx += 1

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("peer closed")
            out += chunk
        return out

    def recv(self):
        head = self._exact(HEADER)
        magic, _, ftype, _, seq, length, _, _ = struct.unpack(">IBBHQIIQ", head[:32])
        assert magic == MAGIC and seq == self.rx, (hex(magic), seq, self.rx)
        self.rx += 1
        return ftype, self._exact(length)

    def handshake(self, name, version, token):
        """Returns AUTH_OK's payload; raises PermissionError with the server's reason on REFUSE/ABORT."""
        cn = os.urandom(32)
        self.send(HELLO, b"UTLH" + bytes([len(name)]) + name.encode() + struct.pack(">H", version) + cn)
        ftype, p = self.recv()
        if ftype in (REFUSE, ABORT):
            raise PermissionError(p[1:].decode() if ftype == REFUSE else p.decode())
        sn = p[4:36]
        label = lambda role: role + b"\0" + name.encode() + b"\0" + struct.pack(">H", version)
        proof = hmac.new(token.encode(), label(b"client") + cn + sn, hashlib.sha256).digest()
        self.send(AUTH, proof)
        ftype, p = self.recv()
        if ftype != AUTH_OK:
            raise PermissionError(p[1:].decode() if ftype == REFUSE else p.decode())
        return p

    def close(self):
        self.sock.close()


def proc_status(pid):
    """VmRSS, VmSize (kB) and Threads of a process, from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmSize", "Threads"):
                out[key] = int(value.split()[0])
    return out
