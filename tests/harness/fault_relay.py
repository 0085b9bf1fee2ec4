"""FaultRelay: a TCP relay on loopback that injects network faults from outside the programs
under test (no test hooks in shipped code).

    relay = FaultRelay(target_port, rate=1 << 20)      # programs connect to 127.0.0.1:relay.port
    relay = FaultRelay(target_port, cut_after=20 << 20)
    relay = FaultRelay(target_port, flip=FrameFlip(...))

- rate: one cap in bytes/s shared by all connections and both directions (0: none).
- share_rate_with: another FaultRelay; this one paces through that relay's cap instead of its own,
  so two relays to two ports (an NBD server and a migration port) share one link. Each counts its
  own bytes.
- cut_after: once this many bytes went forward (client -> target, over all connections), every
  connection is shut down and new ones are refused.
- corrupt_at: flip one bit of the forward byte at this offset (counted over all connections).
- cut_before_frame: (forward, FrameCut): cut every connection instead of passing on the first
  frame the FrameCut matches going that way (forward = client -> target); `relay.cut_frame_seen`
  says whether it happened.
- hook_before_frame: (forward, FrameCut, fn): call fn() (once, on the relay's thread) just before
  passing on the first frame the FrameCut matches going that way, then pass it on;
  `relay.hook_ran` says whether it happened.
- flip: a FrameFlip that follows a framed protocol in each forward stream and flips one byte inside
  the payload of the Nth matching frame, so the damage lands where only the payload checksum can
  catch it. After the relay ran, `flip.flipped` says whether it happened (a test should assert it,
  so that it can never pass without the fault).
Counters: forward, backward, total().
"""
import socket
import struct
import threading
import time


class FrameFlip:
    """Flips one byte of the payload of the `nth` (1-based, over the relay's life) frame whose
    header `match(header)` accepts. `header_size` is the fixed header length; `payload_len(header)`
    reads the payload length from it; `where(payload_len)` picks the byte (default: the middle)."""

    def __init__(self, header_size, payload_len, match, nth=1, where=None, xor=0x01):
        self.header_size, self.payload_len, self.match = header_size, payload_len, match
        self.nth, self.where, self.xor = nth, where or (lambda n: n // 2), xor
        self.seen = 0
        self.flipped = False
        self.lock = threading.Lock()

    def stream(self):
        return _FrameStream(self)


class _FrameStream:
    """One connection's forward stream, split into header and payload bytes."""

    def __init__(self, spec):
        self.spec = spec
        self.header = b""
        self.left = 0      # payload bytes still to come in the current frame
        self.pos = 0       # offset inside the current payload
        self.target = None

    def feed(self, data):
        out = bytearray(data)
        i, spec = 0, self.spec
        while i < len(out):
            if self.left == 0:
                take = min(spec.header_size - len(self.header), len(out) - i)
                self.header += bytes(out[i:i + take])
                i += take
                if len(self.header) == spec.header_size:
                    self.left, self.pos, self.target = spec.payload_len(self.header), 0, None
                    with spec.lock:
                        if not spec.flipped and self.left > 0 and spec.match(self.header):
                            spec.seen += 1
                            if spec.seen == spec.nth:
                                self.target = spec.where(self.left)
                    self.header = b""
            else:
                take = min(self.left, len(out) - i)
                if self.target is not None and self.pos <= self.target < self.pos + take:
                    out[i + self.target - self.pos] ^= spec.xor
                    self.target = None
                    spec.flipped = True
                self.pos += take
                self.left -= take
                i += take
        return bytes(out)


class FrameCut:
    """Finds where the first frame whose header `match(header)` accepts starts, in one direction of
    one connection (fixed `header_size`, `payload_len(header)` as for FrameFlip)."""

    def __init__(self, header_size, payload_len, match):
        self.header_size, self.payload_len, self.match = header_size, payload_len, match

    def stream(self):
        return _CutStream(self)


class _CutStream:
    def __init__(self, spec):
        self.spec, self.header, self.skip = spec, b"", 0

    def find(self, data):
        """Offset in `data` where a matching frame starts (possibly 0 for one begun in an
        earlier chunk), or None."""
        i, spec = 0, self.spec
        while i < len(data):
            if self.skip:
                n = min(self.skip, len(data) - i)
                self.skip -= n
                i += n
                continue
            start = i - len(self.header)
            need = spec.header_size - len(self.header)
            self.header += data[i:i + need]
            i += min(need, len(data) - i)
            if len(self.header) < spec.header_size:
                break
            if spec.match(self.header):
                return max(start, 0)
            self.skip = spec.payload_len(self.header)
            self.header = b""
        return None


# The link frame (common/include/utsushi/common/link/frame.h) that p2v and livemig share: a
# 40-byte header, the message type at byte 5, the payload length u32 big-endian at byte 16.
LINK_HEADER = 40


def link_payload_len(header):
    return struct.unpack_from(">I", header, 16)[0]


def link_frame_cut(ftype):
    """Matches the link frames of message type `ftype`."""
    return FrameCut(LINK_HEADER, link_payload_len, lambda h: h[5] == ftype)


def link_frame_flip(ftype, nth, last_byte=False):
    """Damages the nth frame of message type `ftype`: one bit in the middle of its payload, or
    (last_byte) its payload's last byte, where a zstd frame keeps its checksum."""
    if last_byte:
        return FrameFlip(LINK_HEADER, link_payload_len, lambda h: h[5] == ftype, nth=nth,
                         where=lambda n: n - 1, xor=0x5A)
    return FrameFlip(LINK_HEADER, link_payload_len, lambda h: h[5] == ftype, nth=nth)


class FaultRelay:
    def __init__(self, target_port, rate=0, cut_after=None, corrupt_at=None, flip=None, cut_before_frame=None,
                 target_host="127.0.0.1", hook_before_frame=None, share_rate_with=None, record=False):
        self.target = (target_host, target_port)
        # record: (time.time(), bytes) of every chunk paced through this relay's bucket (a
        # relay that shares another's bucket records there), for link profiles.
        self.chunks = [] if record else None
        self.rate, self.cut_after, self.corrupt_at, self.flip = rate, cut_after, corrupt_at, flip
        # Another FaultRelay whose token bucket (and rate) this one paces through: two
        # relays to two ports of one destination then cap the link they share together.
        self.shared_bucket = share_rate_with
        self.cut_before_frame = cut_before_frame
        self.cut_frame_seen = False
        self.hook_before_frame = hook_before_frame
        self.hook_ran = False
        self.forward = 0     # client -> target bytes
        self.backward = 0
        self.lock = threading.Lock()
        self.next_t = time.monotonic()
        self.conns = []
        self.cut = False
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        threading.Thread(target=self._accept, daemon=True).start()

    def _pace(self, n):
        if self.shared_bucket is not None:
            self.shared_bucket._pace(n)
            return
        if self.rate:
            with self.lock:
                now = time.monotonic()
                self.next_t = max(self.next_t, now - 0.01) + n / self.rate
                wait = self.next_t - now
            if wait > 0:
                time.sleep(wait)
        if self.chunks is not None:
            self.chunks.append((time.time(), n))

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if self.cut:
                c.close()
                continue
            try:
                t = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            for s in (c, t):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
                # A link forwards what it gets; Nagle's algorithm here would hold a short
                # message back until the far end's delayed ACK (40 ms), which no wire does.
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conns += [c, t]
            stream = self.flip.stream() if self.flip else None
            threading.Thread(target=self._pipe, args=(c, t, True, stream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(t, c, False, None), daemon=True).start()

    def _cut_watch(self, forward):
        if self.cut_before_frame and self.cut_before_frame[0] == forward:
            return self.cut_before_frame[1].stream()
        return None

    def _hook_watch(self, forward):
        if self.hook_before_frame and self.hook_before_frame[0] == forward:
            return self.hook_before_frame[1].stream()
        return None

    def _pipe(self, a, b, forward, stream):
        watch = self._cut_watch(forward)
        hook = self._hook_watch(forward)
        try:
            while not self.cut:
                data = a.recv(32768)
                if not data:
                    break
                self._pace(len(data))
                with self.lock:
                    base = self.forward if forward else self.backward
                    if forward:
                        self.forward += len(data)
                    else:
                        self.backward += len(data)
                if forward and self.corrupt_at is not None and base <= self.corrupt_at < base + len(data):
                    data = bytearray(data)
                    data[self.corrupt_at - base] ^= 0x10
                    data = bytes(data)
                if stream is not None:
                    data = stream.feed(data)
                if forward and self.cut_after is not None and base + len(data) >= self.cut_after:
                    self.kill()
                    break
                if hook is not None:
                    at = hook.find(data)
                    if at is not None:
                        b.sendall(data[:at])
                        data = data[at:]
                        hook = None
                        with self.lock:
                            first = not self.hook_ran
                            self.hook_ran = True
                        if first:
                            self.hook_before_frame[2]()
                at = watch.find(data) if watch else None
                if at is not None:
                    b.sendall(data[:at])
                    self.cut_frame_seen = True
                    self.kill()
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            # One side ended: end both, and close the socket this thread reads, so that a peer
            # still sending gets a reset instead of filling a buffer nobody reads.
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            a.close()

    def total(self):
        return self.forward + self.backward

    def kill(self):
        """Cuts every connection now; later connections are refused."""
        self.cut = True
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self):
        self.kill()
        self.lsock.close()
