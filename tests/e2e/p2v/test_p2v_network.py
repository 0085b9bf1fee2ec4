#!/usr/bin/python3
"""p2v serve / capture --to on 127.0.0.1 (issue 5): a wrong token is refused before anything
is written; the client and then the server are killed (-9) mid-transfer and the same command
resumes; a chunk damaged on the wire is re-sent; the served image is identical to a local
capture under `qemu-img compare` and checks clean."""
import os
import socket
import subprocess
import time
import unittest

from p2v_common import P2V, fixture, p2v, workdir


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
        with open(self.token, "w") as f:
            f.write("utsushi-test-token\n")
        self.addr = f"127.0.0.1:{free_port()}"
        self.server = None

    def tearDown(self):
        if self.server and self.server.poll() is None:
            self.server.kill()
            self.server.wait()
        self.tmp.cleanup()

    def start_server(self, *extra):
        self.server = subprocess.Popen([P2V, "serve", "--listen", self.addr, "--token-file", self.token,
                                        "--output-dir", self.out, *extra], stderr=subprocess.PIPE, text=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", int(self.addr.split(":")[1])), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.fail("server did not start")

    def client(self, token=None, env=None):
        return subprocess.Popen([P2V, "capture", self.fx["path"], "--to", self.addr, "--token-file",
                                 token or self.token], stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(env or {})})

    def test_wrong_token_refused(self):
        self.start_server()
        bad = os.path.join(self.tmp.name, "bad")
        with open(bad, "w") as f:
            f.write("not-the-token\n")
        c = self.client(token=bad)
        _, err = c.communicate(timeout=60)
        self.assertNotEqual(c.returncode, 0)
        self.assertIn("wrong token", err)
        self.assertEqual(os.listdir(self.out), [])

    def test_kill_both_sides_resume_and_identical(self):
        self.start_server()
        throttle = {"UTSUSHI_P2V_THROTTLE_MS": "100"}  # ~8 s in all: both kills land mid-transfer
        c = self.client(env=throttle)
        time.sleep(1.5)
        c.kill()
        c.wait()
        c = self.client(env=throttle)
        time.sleep(1.5)
        self.server.kill()  # the server dies mid-transfer
        self.server.wait()
        _, err = c.communicate(timeout=60)
        self.assertNotEqual(c.returncode, 0)
        self.start_server("--once")
        c = self.client(env={"UTSUSHI_P2V_CORRUPT_CHUNK": "2"})
        _, err = c.communicate(timeout=120)
        self.assertEqual(c.returncode, 0, err)
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
