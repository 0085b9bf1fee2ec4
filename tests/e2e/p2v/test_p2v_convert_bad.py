#!/usr/bin/python3
"""p2v convert refusals and the dry run (issue 11). Each case: a clear error, the
documented exit code, the source image unchanged, nothing left in the output directory.

  - a dry run lists what it would change, exits 0 and writes nothing;
  - a guest whose update-initramfs fails (broken in an overlay): exit 1 naming it;
  - disks with filesystems but no operating system (the data-disk fixture): exit 3;
  - a non-Linux filesystem only (an NTFS volume): exit 3;
  - an OVA, or --in-place with --output-dir: exit 2 before any appliance starts;
  - a domain of that name on the libvirtd already: exit 4 before any appliance starts.
All of it against a private libvirtd, which holds no domain but the one put there first."""
import os
import subprocess
import unittest

from convert_common import (P2V, PrivateLibvirtd, capture, convert, fixture, host_bridge, log, sha256_file,
                            workdir, write_profile)
from harness.guestfs import Script

BROKEN_TOOL = "#!/bin/sh\necho 'update-initramfs: broken on purpose by the test' >&2\nexit 1\n"


def break_initramfs_tool(image, broken, d):
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, broken], check=True)
    script = os.path.join(d, "update-initramfs")
    with open(script, "w") as f:
        f.write(BROKEN_TOOL)
    s = Script()
    s.add_disk(broken, fmt="qcow2", readonly=False)
    s.launch()
    s.cmd("mount /dev/sda2 /")
    s.cmd(f"upload {script} /usr/sbin/update-initramfs")
    s.cmd("chmod 0755 /usr/sbin/update-initramfs")
    s.cmd("umount-all")
    s.run()


EXISTING = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os></domain>"""


class ConvertRefusals(unittest.TestCase):
    def assert_nothing_written(self, out):
        self.assertEqual(os.listdir(out) if os.path.isdir(out) else [], [], "output left behind")

    def assert_domains(self, lv, names):
        self.assertEqual(sorted(lv.virsh("list", "--all", "--name").split()), sorted(names))

    def test_dry_run_and_refusals(self):
        with PrivateLibvirtd() as lv, host_bridge() as bridge:
            self.refusals(lv, ["--connect", lv.uri, "--bridge", bridge])

    def refusals(self, lv, virt):
        fx = fixture("physical-server")
        with workdir() as d:
            image = capture(fx, d)
            before = sha256_file(image)
            profile = write_profile(fx, os.path.join(d, "hw.json"))
            out = os.path.join(d, "out")
            os.makedirs(out)

            log("dry run")
            proc, res = convert(image, "--profile", profile, "--output-dir", out, "--dry-run", *virt)
            self.assertEqual(proc.returncode, 0)
            self.assertTrue(res["dry-run"])
            statuses = {op["name"]: op["status"] for op in res["report"]["operations"]}
            self.assertEqual(statuses["initramfs"], "planned")
            self.assertEqual(statuses["nic-names"], "planned")
            planned = [c for op in res["report"]["operations"] for c in op["changes"]]
            self.assertTrue(any(c["kind"] == "command" and c["command"].startswith("update-initramfs")
                                and c["exit-code"] is None for c in planned))
            self.assertIn("<domain", res["domain"]["xml"])
            self.assertFalse(res["domain"]["defined"])
            self.assert_nothing_written(out)
            self.assertEqual(sha256_file(image), before)
            self.assert_domains(lv, [])

            log("a domain of that name exists")
            xml = os.path.join(d, "existing.xml")
            with open(xml, "w") as f:
                f.write(EXISTING.format(name=fx["hostname"]))
            lv.virsh("define", xml)
            proc, _ = convert(image, "--profile", profile, "--output-dir", out, *virt, check=False)
            self.assertEqual(proc.returncode, 4, proc.stderr[-3000:])
            self.assertIn(f"a domain named {fx['hostname']} exists", proc.stderr)
            self.assertNotIn("launching the libguestfs appliance", proc.stderr)
            self.assert_nothing_written(out)
            self.assert_domains(lv, [fx["hostname"]])
            lv.virsh("undefine", fx["hostname"])

            log("broken update-initramfs")
            broken = os.path.join(d, "broken.qcow2")
            break_initramfs_tool(image, broken, d)
            broken_sum = sha256_file(broken)
            proc, _ = convert(broken, "--profile", profile, "--output-dir", out, *virt, check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr[-3000:])
            self.assertIn("update-initramfs failed", proc.stderr)
            self.assertIn("broken on purpose", proc.stderr)
            self.assert_nothing_written(out)
            self.assertEqual(sha256_file(broken), broken_sum)
            self.assertEqual(sha256_file(image), before)
            self.assert_domains(lv, [])

        log("no operating system")
        data = fixture("data-disk")
        with workdir() as d:
            out = os.path.join(d, "out")
            data_sum = sha256_file(data["path"])
            proc, _ = convert(data["path"], "--output-dir", out, *virt, check=False)
            self.assertEqual(proc.returncode, 3, proc.stderr[-3000:])
            self.assertIn("no operating system found", proc.stderr)
            self.assertIn("ntfs", proc.stderr)
            self.assert_nothing_written(out)
            self.assertEqual(sha256_file(data["path"]), data_sum)

            log("a non-Linux filesystem only")
            ntfs = os.path.join(d, "ntfs.raw")
            subprocess.run(["truncate", "-s", "64M", ntfs], check=True)
            subprocess.run(["mkntfs", "-q", "-F", "-Q", "-L", "WINDATA", ntfs], check=True, capture_output=True)
            ntfs_sum = sha256_file(ntfs)
            proc, _ = convert(ntfs, "--output-dir", out, *virt, check=False)
            self.assertEqual(proc.returncode, 3, proc.stderr[-3000:])
            self.assertIn("no operating system found", proc.stderr)
            self.assertIn("ntfs", proc.stderr)
            self.assert_nothing_written(out)
            self.assertEqual(sha256_file(ntfs), ntfs_sum)

            log("usage errors")
            ova = os.path.join(d, "machine.ova")
            subprocess.run([os.path.join(os.path.dirname(P2V), "utsushi-img"), "convert", "-O", "ova", ntfs, ova],
                           check=True, capture_output=True)
            proc, _ = convert(ova, "--output-dir", out, *virt, check=False)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            proc, _ = convert(ntfs, "--output-dir", out, "--in-place", *virt, check=False)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assert_nothing_written(out)
            self.assert_domains(lv, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
