#!/usr/bin/python3
"""v2p serve / v2p restore --from (issue 12, "restore from another host"): the born-virtual
image served over 127.0.0.1 restores onto a larger target byte for byte as a local restore
does; a client killed with SIGKILL mid-transfer, and a server killed mid-transfer, each end
in a re-run that resumes and gives the same disk; a wrong token writes nothing. Boot
preparation is the same code as a local restore's (test_v2p_boot.py), so --no-prepare here.
Transfers that are killed go through a rate-limited relay (tests/harness/fault_relay), so
the kill lands mid-transfer however fast the machine is."""
import os
import signal
import subprocess
import time
import unittest

from v2p_common import V2P, WorkdirCase, fixture, result, sha256_file, sparse_file, v2p
from harness.fault_relay import FaultRelay  # noqa: E402

GiB = 1 << 30
TARGET_SIZE = 4 * GiB  # the image's own size: no filesystem tool runs, so restores are byte-identical
TOKEN = "v2p network restore test token"


class Server:
    """`v2p serve IMAGE` on 127.0.0.1 (port 0 unless given), until stopped or killed."""

    def __init__(self, image, token_file, workdir, port=0):
        name = f"serve-{time.monotonic_ns()}"
        port_file, self.log = os.path.join(workdir, name + ".port"), os.path.join(workdir, name + ".log")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([V2P, "serve", image, "--listen", f"127.0.0.1:{port}", "--token-file",
                                          token_file, "--port-file", port_file],
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 120  # a qcow2 is checked before listening
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"v2p serve exited early: {open(self.log).read()}")
            if os.path.exists(port_file) and open(port_file).read().strip():
                self.port = int(open(port_file).read().strip())
                self.address = f"127.0.0.1:{self.port}"
                return
            time.sleep(0.1)
        self.proc.kill()
        raise AssertionError("v2p serve did not listen")

    def kill(self):
        self.proc.kill()
        self.proc.wait()


class NetworkRestore(WorkdirCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.image = fixture("born-virtual")["path"]
        cls.token = os.path.join(cls.dir, "token")
        with open(cls.token, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(cls.token, 0o600)
        cls.local = sparse_file(os.path.join(cls.dir, "local.raw"), TARGET_SIZE)
        v2p("restore", "--no-prepare", "--state-dir", cls.state, cls.image, cls.local)
        cls.local_sha = sha256_file(cls.local)
        cls.server = Server(cls.image, cls.token, cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()
        super().tearDownClass()

    def restore_from(self, address, target, *extra, check=True):
        return v2p("restore", "--json", "--no-prepare", "--state-dir", self.state, "--from", address,
                   "--token-file", self.token, *extra, target, check=check)

    def start_restore(self, address, target, *extra):
        return subprocess.Popen([V2P, "restore", "--json", "--no-prepare", "--state-dir", self.state, "--from",
                                 address, "--token-file", self.token, *extra, target],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_bytes(self, relay, proc, n, timeout=300):
        """Until the relay carried n bytes server -> client, while `proc` runs."""
        deadline = time.monotonic() + timeout
        while relay.backward < n:
            if proc.poll() is not None:
                self.fail(f"restore ended before {n} bytes crossed: {proc.stderr.read()}")
            if time.monotonic() > deadline:
                self.fail(f"only {relay.backward} bytes crossed in {timeout} s")
            time.sleep(0.05)

    def test_network_restore_equals_a_local_one(self):
        target = sparse_file(os.path.join(self.dir, "net.raw"), TARGET_SIZE)
        r = result(self.restore_from(self.server.address, target))
        self.assertEqual(r["image"], self.server.address)
        self.assertFalse(r["resumed"])
        self.assertGreater(r["bytes-written"], 500 << 20)
        self.assertEqual(sha256_file(target), self.local_sha)

    def test_client_killed_mid_transfer_resumes(self):
        target = sparse_file(os.path.join(self.dir, "client-killed.raw"), TARGET_SIZE)
        relay = FaultRelay(self.server.port, rate=40 << 20)
        proc = self.start_restore(relay.address, target)
        self.addCleanup(proc.kill)
        self.wait_bytes(relay, proc, 300 << 20)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        r = result(self.restore_from(self.server.address, target))
        self.assertTrue(r["resumed"], r)
        self.assertEqual(sha256_file(target), self.local_sha)

    def test_server_killed_mid_transfer_resumes(self):
        server = Server(self.image, self.token, self.dir)
        self.addCleanup(server.kill)
        target = sparse_file(os.path.join(self.dir, "server-killed.raw"), TARGET_SIZE)
        relay = FaultRelay(server.port, rate=40 << 20)
        proc = self.start_restore(relay.address, target, "--retry-for", "3")
        self.addCleanup(proc.kill)
        self.wait_bytes(relay, proc, 300 << 20)
        server.kill()
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn("did not answer", err)
        self.assertLess(time.monotonic() - t0, 60)
        again = Server(self.image, self.token, self.dir)  # another port: the journal knows the image, not the address
        self.addCleanup(again.kill)
        r = result(self.restore_from(again.address, target))
        self.assertTrue(r["resumed"], r)
        self.assertEqual(sha256_file(target), self.local_sha)

    def test_wrong_token_writes_nothing(self):
        target = sparse_file(os.path.join(self.dir, "refused.raw"), TARGET_SIZE)
        before = sha256_file(target)
        bad = os.path.join(self.dir, "bad-token")
        with open(bad, "w") as f:
            f.write("not the token of this server\n")
        os.chmod(bad, 0o600)
        proc = v2p("restore", "--no-prepare", "--state-dir", self.state, "--from", self.server.address,
                   "--token-file", bad, target, check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("token", proc.stderr.lower() + proc.stdout.lower())
        self.assertEqual(sha256_file(target), before)

    def test_usage_errors(self):
        target = sparse_file(os.path.join(self.dir, "usage.raw"), TARGET_SIZE)
        for args in (["--from", self.server.address, target],                        # no --token-file
                     ["--from", self.server.address, "--token-file", self.token, self.image, target]):
            proc = v2p("restore", "--no-prepare", *args, check=False)
            self.assertEqual(proc.returncode, 2, proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
