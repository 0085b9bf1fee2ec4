#!/usr/bin/python3
"""p2v serve / capture --to on 127.0.0.1 (issue 5): a wrong token is refused before anything
is written, and so are a short token and a token file others may read; the client and then the
server are killed (-9) mid-transfer (slowed by a rate-capped relay) and the same command resumes;
a chunk damaged on the wire (by a relay that flips a byte inside the second CHUNK's payload) is
re-sent; the served image is identical to a local capture under `qemu-img compare` and checks
clean. Faults come from tests/harness/fault_relay.py; p2v has no test hooks."""
import os
import socket
import subprocess
import time
import unittest

from p2v_common import P2V, fixture, p2v, workdir
from harness.fault_relay import FaultRelay, p2v_chunk_flip


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
        self.write_token(self.token, "utsushi-test-token\n")
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

    def start_server(self, *extra, wrap=()):
        """Starts `p2v serve` (under the command `wrap`, e.g. strace, when given) and waits for it."""
        self.server = subprocess.Popen([*wrap, P2V, "serve", "--listen", self.addr, "--token-file", self.token,
                                        "--output-dir", self.out, *extra], stderr=subprocess.PIPE, text=True)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", int(self.addr.split(":")[1])), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.fail("server did not start")

    def client(self, token=None, via=None):
        return subprocess.Popen([P2V, "capture", self.fx["path"], "--to", via.address if via else self.addr,
                                 "--token-file", token or self.token], stderr=subprocess.PIPE, text=True)

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
                            self.token], capture_output=True, text=True, timeout=300)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(self.server.wait(timeout=60), 0)
        with open(trace) as f:
            lines = f.read().splitlines()
        renamed = [i for i, line in enumerate(lines) if "rename" in line and "disk.raw\"" in line]
        self.assertTrue(renamed, "no rename into disk.raw:\n" + "\n".join(lines[-20:]))
        out_dir = os.path.realpath(self.out)
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
        served = os.path.join(self.out, "disk.qcow2")
        local = os.path.join(self.tmp.name, "local.qcow2")
        p2v("capture", self.fx["path"], "-o", local, "--no-profile")
        cmp = subprocess.run(["qemu-img", "compare", local, served], capture_output=True, text=True)
        self.assertEqual(cmp.returncode, 0, cmp.stdout)
        check = subprocess.run(["qemu-img", "check", served], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout)
        self.assertEqual(sorted(os.listdir(self.out)), ["disk.qcow2"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
