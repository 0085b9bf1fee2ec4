"""The emulator for libvirt domains that migrate under TCG widens the guest's RAM, and only that.

widen() is checked on the command lines libvirt 9.0 writes (`-m 512` with the pc.ram
backend object); the script itself runs the real QEMU, which reports the widened size.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from harness import qemu_tcg_migratable as emu  # noqa: E402
from harness.libvirtd import TCG_MIGRATABLE_EMULATOR  # noqa: E402
from harness.qemu import TCG_MIGRATION_EXTRA_KIB  # noqa: E402

MIB512 = 512 << 20
EXTRA = TCG_MIGRATION_EXTRA_KIB << 10
BACKEND = '{"qom-type":"memory-backend-ram","id":"pc.ram","size":%d}' % MIB512


class Widen(unittest.TestCase):
    def test_libvirt_memory_and_its_backend_grow_together(self):
        out = emu.widen(["-accel", "tcg", "-m", "512", "-object", BACKEND, "-smp", "1"])
        self.assertEqual(out[3], "size=%dk" % ((MIB512 + EXTRA) >> 10))
        self.assertEqual(json.loads(out[5])["size"], MIB512 + EXTRA)
        self.assertEqual(out[:3] + [out[4]] + out[6:], ["-accel", "tcg", "-m", "-object", "-smp", "1"])

    def test_size_with_unit_and_more_keys(self):
        out = emu.widen(["-m", "size=1G,slots=2,maxmem=4G"])
        self.assertEqual(out[1], "size=%dk,slots=2,maxmem=4G" % (((1 << 30) + EXTRA) >> 10))

    def test_other_objects_stay(self):
        other = '{"qom-type":"memory-backend-ram","id":"ram-node0","size":%d}' % MIB512
        self.assertEqual(emu.widen(["-object", other]), ["-object", other])
        secret = '{"qom-type":"secret","id":"masterKey0","format":"raw","file":"/k"}'
        self.assertEqual(emu.widen(["-object", secret]), ["-object", secret])


class RealQemu(unittest.TestCase):
    def base_memory(self, *accel):
        qmp = ('{"execute":"qmp_capabilities"}\n{"execute":"query-memory-size-summary"}\n'
               '{"execute":"quit"}\n')
        proc = subprocess.run([TCG_MIGRATABLE_EMULATOR, *accel, "-machine", "pc,memory-backend=pc.ram",
                               "-m", "512", "-object", BACKEND, "-display", "none", "-nodefaults", "-S",
                               "-qmp", "stdio"], input=qmp, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        replies = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        return next(r["return"]["base-memory"] for r in replies if "base-memory" in r.get("return", {}))

    def test_tcg_guest_gets_the_extra(self):
        self.assertEqual(self.base_memory("-accel", "tcg"), MIB512 + EXTRA)

    def test_without_tcg_nothing_changes(self):
        self.assertEqual(self.base_memory(), MIB512)


if __name__ == "__main__":
    unittest.main()
