#!/usr/bin/python3
"""p2v serve --convert (issue 11): physical-server captured over the network ends as a
converted guest, defined and started on a private libvirtd, with the same result as a
local capture and conversion: the domain carries the profile's CPUs, memory and MAC and
virtio devices, and from its serial console the static address is up on the pinned NIC,
root is /dev/vda2 and the data manifest matches."""
import json
import os
import secrets
import subprocess
import time
import unittest

from convert_common import (BOOT_TIMEOUT, CONVERT_TIMEOUT, P2V, PrivateLibvirtd, VirshConsole, check_domain, check_inside,
                            fixture, host_bridge, log, p2v, workdir, write_profile)


def wait_port(port_file, proc, timeout=120):
    """The port `p2v serve --port-file` wrote once listening."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"p2v serve exited early: {proc.stderr.read()}")
        if os.path.exists(port_file):
            with open(port_file) as f:
                text = f.read().strip()
            if text:
                return int(text)
        time.sleep(0.2)
    raise AssertionError("p2v serve did not listen")


CLIENT = "rack-3"


class ServeConvert(unittest.TestCase):
    def test_network_capture_ends_as_a_running_guest(self):
        fx = fixture("physical-server")
        with workdir() as d, PrivateLibvirtd() as lv, host_bridge() as bridge:
            token = os.path.join(d, "token")
            with open(token, "w") as f:
                f.write(secrets.token_hex(24) + "\n")
            os.chmod(token, 0o600)
            profile = write_profile(fx, os.path.join(d, "hw.json"))
            out = os.path.join(d, "received")
            port_file = os.path.join(d, "port")
            serve = subprocess.Popen([P2V, "-v", "--json", "serve", "--listen", "127.0.0.1:0", "--port-file", port_file,
                                      "--token-file", token, "--output-dir", out, "--once", "--convert", "--profile",
                                      profile, "--connect", lv.uri, "--bridge", bridge, "--start"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                port = wait_port(port_file, serve)
                p2v("capture", fx["path"], "--to", f"127.0.0.1:{port}", "--token-file", token, "--name", CLIENT,
                    "-o", "disk.qcow2")
                log("captured over the network; the server converts")
                stdout, stderr = serve.communicate(timeout=CONVERT_TIMEOUT)
            finally:
                if serve.poll() is None:
                    serve.kill()
                    serve.wait()
            self.assertEqual(serve.returncode, 0, stderr[-6000:])
            results = [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]
            conv = next(r for r in results if r.get("type") == "result" and "domain" in r)
            self.assertEqual(results[-1], {"type": "result", "status": "ok"})
            domain = conv["domain"]
            self.assertTrue(domain["defined"])
            self.assertTrue(domain["started"])
            disk = conv["disks"][0]["path"]
            received = os.path.join(out, CLIENT, "disk.qcow2")
            self.assertEqual(os.path.dirname(disk), os.path.dirname(received), "converted beside the received image")
            self.assertEqual(conv["disks"][0]["source"], received)
            check_domain(self, lv, domain["name"], cpus=2, memory_mib=1024, macs=[fx["network"]["mac"]],
                         firmware="bios", disks=[disk])
            try:
                with VirshConsole(lv.uri, domain["name"]) as console:
                    console.login(timeout=BOOT_TIMEOUT)
                    log("logged in on the domain's serial console")
                    check_inside(self, fx, console.run, fx["network"]["mac"], "/dev/vda2")
            finally:
                subprocess.run(["virsh", "-c", lv.uri, "destroy", domain["name"]], capture_output=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
