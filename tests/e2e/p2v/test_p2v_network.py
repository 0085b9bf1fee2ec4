#!/usr/bin/python3
"""p2v serve / capture --to on 127.0.0.1 (issue 5): a wrong token is refused before anything
is written, and so are a short token and a token file others may read; the client and then the
server are killed (-9) mid-transfer (slowed by a rate-capped relay) and the same command resumes;
a chunk damaged on the wire (by a relay that flips a byte inside the second CHUNK's payload) is
re-sent; the served image is identical to a local capture under `qemu-img compare` and checks
clean. Faults come from tests/harness/fault_relay.py; p2v has no test hooks.
Issue 16: the server outlives hostile peers (hundreds of idle, garbage and trickling connections
while a real capture completes; authenticated plans too large for the output directory or for
memory), images are named per client and never silently replaced, `-o` names an image sent with
`--to`, and `--listen HOST:0` reports the real port."""
import json
import os
import socket
import struct
import subprocess
import time
import unittest

from p2v_common import P2V, fixture, p2v, workdir
from harness.fault_relay import FaultRelay, FrameFlip
from linkpeer import Peer, proc_status

TOKEN = "utsushi-test-token"
CLIENT = "testhost"
CHUNK = 3  # p2v's CHUNK message type (p2v/include/utsushi/p2v/wire_format.h)


def p2v_chunk_flip(nth):
    """The link frame (common/link/frame.h): 40-byte header, type at 5, payload length u32 BE at
    16. Damages the last byte of the nth CHUNK's zstd frame."""
    return FrameFlip(40, lambda h: struct.unpack_from(">I", h, 16)[0], lambda h: h[5] == CHUNK, nth=nth,
                     where=lambda n: n - 1, xor=0x5A)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Network(unittest.TestCase):
    def setUp(self):
        self.tmp = workdir()
        d = self.tmp.name
        self.fx = fixture("data-disk")
        self.out = os.path.join(d, "srv")
        self.token = os.path.join(d, "token")
        self.write_token(self.token, TOKEN + "\n")
        self.addr = f"127.0.0.1:{free_port()}"
        self.server = None
        self.relays = []

    @staticmethod
    def write_token(path, text, mode=0o600):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def relay(self, **faults):
        r = FaultRelay(int(self.addr.split(":")[1]), **faults)
        self.relays.append(r)
        return r

    def tearDown(self):
        for r in self.relays:
            r.close()
        if self.server and self.server.poll() is None:
            self.server.kill()
            self.server.wait()
        self.tmp.cleanup()

    def start_server(self, *extra, wrap=(), listen=None, out=None):
        """Starts `p2v serve` (under the command `wrap`, e.g. strace, when given) and waits until it
        listens (its --port-file); returns the port."""
        port_file = os.path.join(self.tmp.name, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.server = subprocess.Popen([*wrap, P2V, "serve", "--listen", listen or self.addr, "--token-file",
                                        self.token, "--output-dir", out or self.out, "--port-file", port_file,
                                        *extra], stderr=subprocess.PIPE, text=True)
        for _ in range(600):
            if os.path.exists(port_file):
                with open(port_file) as f:
                    return int(f.read())
            self.assertIsNone(self.server.poll(), "server exited")
            time.sleep(0.05)
        self.fail("server did not start")

    def client(self, token=None, via=None, name=CLIENT, extra=()):
        return subprocess.Popen([P2V, "capture", self.fx["path"], "--to", via.address if via else self.addr,
                                 "--token-file", token or self.token, "--name", name, *extra],
                                stderr=subprocess.PIPE, text=True)

    def served(self, image="disk.qcow2", client=CLIENT):
        return os.path.join(self.out, client, image)

    def test_wrong_token_refused(self):
        self.start_server()
        bad = os.path.join(self.tmp.name, "bad")
        self.write_token(bad, "not-the-token-at-all\n")
        c = self.client(token=bad)
        _, err = c.communicate(timeout=60)
        self.assertNotEqual(c.returncode, 0)
        self.assertIn("wrong token", err)
        self.assertEqual(os.listdir(self.out), [])

    def test_token_rules(self):
        short = os.path.join(self.tmp.name, "short")
        self.write_token(short, "fifteen-bytes!!\n")
        c = self.client(token=short)
        _, err = c.communicate(timeout=60)
        self.assertEqual(c.returncode, 2, err)
        self.assertIn("at least 16", err)
        shared = os.path.join(self.tmp.name, "shared")
        self.write_token(shared, "utsushi-test-token\n", mode=0o644)
        for cmd in ([P2V, "serve", "--listen", self.addr, "--token-file", shared, "--output-dir", self.out],
                    [P2V, "capture", self.fx["path"], "--to", self.addr, "--token-file", shared]):
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, p.stderr)
            self.assertIn(shared, p.stderr)
            self.assertIn("chmod 600", p.stderr)
        self.assertFalse(os.path.exists(self.out))

    def test_raw_output_is_durable(self):
        """serve --format raw renames the received data into place and then fsyncs the directory
        (common/atomic_file.h commit_rename), as every other output is written."""
        trace = os.path.join(self.tmp.name, "trace")
        self.start_server("--once", wrap=["strace", "-f", "-qq", "-y", "-e",
                                          "trace=fsync,rename,renameat,renameat2", "-o", trace])
        c = subprocess.run([P2V, "capture", self.fx["path"], "--format", "raw", "--to", self.addr, "--token-file",
                            self.token, "--name", CLIENT], capture_output=True, text=True, timeout=300)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(self.server.wait(timeout=60), 0)
        with open(trace) as f:
            lines = f.read().splitlines()
        renamed = [i for i, line in enumerate(lines) if "rename" in line and "disk.raw\"" in line]
        self.assertTrue(renamed, "no rename into disk.raw:\n" + "\n".join(lines[-20:]))
        out_dir = os.path.realpath(os.path.join(self.out, CLIENT))
        synced = [line for line in lines[renamed[-1]:] if line.split(None, 1)[-1].startswith("fsync(") and
                  f"<{out_dir}>" in line]
        self.assertTrue(synced, "the output directory is not fsync'ed after the rename:\n" +
                        "\n".join(lines[renamed[-1]:][:20]))

    def test_kill_both_sides_resume_and_identical(self):
        self.start_server()
        # ~100 MB of zstd chunks at 10 MiB/s: about 10 s in all, so both kills land mid-transfer.
        slow = self.relay(rate=10 << 20)
        c = self.client(via=slow)
        time.sleep(1.5)
        c.kill()
        c.wait()
        self.assertGreater(slow.forward, 0)
        c = self.client(via=slow)
        time.sleep(1.5)
        self.server.kill()  # the server dies mid-transfer
        self.server.wait()
        _, err = c.communicate(timeout=60)
        self.assertNotEqual(c.returncode, 0)
        self.start_server("--once")
        flip = p2v_chunk_flip(2)
        c = self.client(via=self.relay(flip=flip))
        _, err = c.communicate(timeout=120)
        self.assertEqual(c.returncode, 0, err)
        self.assertTrue(flip.flipped, "the relay never damaged a chunk")
        self.assertRegex(err, r"\(([1-9][0-9]*) already there\)")
        self.assertIn("asks for 1 chunk(s) again", err)
        self.assertEqual(self.server.wait(timeout=60), 0)
        served = self.served()
        local = os.path.join(self.tmp.name, "local.qcow2")
        p2v("capture", self.fx["path"], "-o", local, "--no-profile")
        cmp = subprocess.run(["qemu-img", "compare", local, served], capture_output=True, text=True)
        self.assertEqual(cmp.returncode, 0, cmp.stdout)
        check = subprocess.run(["qemu-img", "check", served], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout)
        self.assertEqual(sorted(os.listdir(os.path.join(self.out, CLIENT))), ["disk.qcow2"])

    def test_hostile_crowd_does_not_lock_out_a_capture(self):
        """Issue 16 item 8: 200 idle connections, garbage and a peer trickling a byte a second do
        not delay a real capture; the server's memory and threads stay flat."""
        port = self.start_server()
        base = proc_status(self.server.pid)
        crowd = []
        for i in range(250):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 5 == 1:
                s.sendall(b"GET / HTTP/1.1\r\n\r\n" * 3)
            elif i % 5 == 2:
                s.sendall(b"\xff" * 40)  # a frame header claiming 4 GiB
            crowd.append(s)
        trickler = socket.create_connection(("127.0.0.1", port), timeout=10)
        trickler.sendall(bytes.fromhex("55544c4b01f0"))  # the start of a frame, then a byte a second
        t0 = time.monotonic()
        c = self.client()
        while c.poll() is None and time.monotonic() - t0 < 120:
            try:
                trickler.send(b"\x00")
            except OSError:
                pass
            time.sleep(1)
        _, err = c.communicate(timeout=120)
        took = time.monotonic() - t0
        self.assertEqual(c.returncode, 0, err)
        self.assertLess(took, 60, "the capture waited for the crowd")
        self.assertIsNone(self.server.poll(), "the server died")
        after = proc_status(self.server.pid)  # the crowd is still connected
        for s in crowd:
            s.close()
        trickler.close()
        print(f"serve beside 250 idle/garbage connections and a trickler: capture {took:.1f} s; "
              f"before {base}, with the crowd {after}")
        self.assertLess(after["Threads"], base["Threads"] + 40, (base, after))
        self.assertLess(after["VmRSS"] - base["VmRSS"], 256 * 1024, (base, after))
        check = subprocess.run(["qemu-img", "check", self.served()], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout)

    def begin(self, port, **plan):
        """An authenticated BEGIN; returns the server's reply (type, payload)."""
        peer = Peer(port)
        peer.handshake("p2v", 2, TOKEN)
        msg = {"client": "hostile", "name": "x.raw", "size": 1 << 20, "format": "raw", "compress": False,
               "chunk_size": 4 << 20, "chunks": 1, "plan_id": "0"}
        msg.update(plan)
        peer.send(1, json.dumps(msg).encode())
        try:
            return peer.recv()
        except (ConnectionError, OSError) as e:
            return None, str(e).encode()
        finally:
            peer.close()

    def test_huge_plans_refused_and_the_server_lives(self):
        """Issue 16 item 9: authenticated BEGINs whose plans do not fit (chunks beyond any disk,
        beyond memory, beyond the output directory's free space) are refused before anything is
        allocated or created; the server keeps serving."""
        small = os.path.join(self.tmp.name, "small")
        os.mkdir(small)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", small], check=True)
        try:
            self.check_huge_plans(small)
        finally:
            if self.server.poll() is None:
                self.server.kill()
                self.server.wait()
            subprocess.run(["umount", small], check=True)

    def check_huge_plans(self, small):
        port = self.start_server(listen="127.0.0.1:0", out=small)
        base = proc_status(self.server.pid)
        hostile = [dict(size=2 << 40, chunks=1 << 32),        # 2 TiB, 4 G chunks: more than memory
                   dict(size=1 << 62, chunks=1),              # beyond any disk
                   dict(size=1 << 40, chunks=1 << 20),        # 1 M chunks: more than the 64 MiB free
                   dict(size=1 << 30, chunks=5, chunk_size=1)]
        replies = []
        for plan in hostile:
            ftype, reply = self.begin(port, **plan)
            self.assertEqual(ftype, 0xFF, (plan, reply))  # the link's abort, with the reason
            self.assertIsNone(self.server.poll(), f"the server died on {plan}")
            replies.append(reply)
        self.assertIn(b"free", replies[2])
        self.assertEqual(os.listdir(small), [], "a refused plan left files")
        ftype, _ = self.begin(port)  # a plan that fits: STATE
        self.assertEqual(ftype, 2)
        after = proc_status(self.server.pid)
        print(f"serve after hostile plans: before {base}, after {after}")
        self.assertLess(after["VmRSS"] - base["VmRSS"], 64 * 1024, (base, after))

    def test_images_named_per_client_never_replaced(self):
        """Issue 16 item 10: two hosts capturing the same disk name get one image each; a second
        capture to an existing image is refused (exit 4) and the image is unchanged; -o names the
        image; names with path separators or control characters are refused; port 0 is reported."""
        port = self.start_server(listen="127.0.0.1:0")
        self.addr = f"127.0.0.1:{port}"
        for name in ("host-a", "host-b"):
            c = self.client(name=name)
            _, err = c.communicate(timeout=300)
            self.assertEqual(c.returncode, 0, err)
        self.assertTrue(os.path.exists(self.served(client="host-a")))
        self.assertTrue(os.path.exists(self.served(client="host-b")))
        before = os.stat(self.served(client="host-a"))
        c = self.client(name="host-a")
        _, err = c.communicate(timeout=300)
        self.assertEqual(c.returncode, 4, err)
        self.assertIn("already exists", err)
        after = os.stat(self.served(client="host-a"))
        self.assertEqual((before.st_ino, before.st_mtime_ns), (after.st_ino, after.st_mtime_ns))
        c = self.client(name="host-a", extra=("-o", "web01-root.qcow2"))
        _, err = c.communicate(timeout=300)
        self.assertEqual(c.returncode, 0, err)
        self.assertTrue(os.path.exists(self.served("web01-root.qcow2", "host-a")))
        for bad in (("--name", "../x"), ("--name", "a\x07b"), ("-o", "sub/dir.qcow2")):
            c = subprocess.run([P2V, "capture", self.fx["path"], "--to", self.addr, "--token-file", self.token,
                                *bad], capture_output=True, text=True, timeout=120)
            self.assertEqual(c.returncode, 2, (bad, c.stderr))
        self.assertIsNone(self.server.poll())
        self.server.terminate()
        _, err = self.server.communicate(timeout=60)
        self.assertIn(f"listening on 127.0.0.1:{port}", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
